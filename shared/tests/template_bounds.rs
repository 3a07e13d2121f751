//! Templates generated from minijinja's grammar, tricks included (delimiters
//! inside strings, comments, raw blocks, whitespace control, the filters and
//! operators that multiply a value's length), are checked as a save checks
//! them; every one that saves is rendered with contact values anywhere within
//! their input limits, and the render's peak allocation is measured by the
//! counting allocator below (this test binary's own global allocator).
//!
//! The bound asserted is 2 MiB per render of a whole template (subject, text
//! and HTML, or the text message), and for the check at save, which renders
//! what it lets through with sample and longest values.

use portal::mail::templates::{render, render_sms, validate, EmailTemplate, TemplateVars};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes this thread holds, and the most it held, while `ON`.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            let held = HELD.with(|h| {
                h.set(h.get() + delta);
                h.get()
            });
            PEAK.with(|p| p.set(p.get().max(held)));
        }
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counting touches only const-initialised thread-local cells (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes held at once while `f` ran, above what was held before it.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    HELD.with(|h| h.set(0));
    PEAK.with(|p| p.set(0));
    ON.with(|on| on.set(true));
    let out = f();
    ON.with(|on| on.set(false));
    (out, PEAK.with(Cell::get).max(0) as usize)
}

const BOUND: usize = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------
// The grammar.

fn var() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["contact_name", "portal_name", "tenant_name", "code", "link", "claim_url", "expires_at", "account_email"])
        .prop_map(str::to_owned)
}

/// String literals, the delimiters among them.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["}}", "%}", "{{", "{%", "{#", "#}", "-}}", "x", "o", " ", "\\\"", "<&>"]).prop_map(|s| format!("\"{s}\"")),
        (1usize..400).prop_map(|n| format!("'{}'", "o".repeat(n))),
    ]
}

fn number(tricks: bool) -> BoxedStrategy<String> {
    let small = (0i64..=100).prop_map(|n| n.to_string());
    if tricks {
        prop_oneof![6 => small, 1 => Just("100000".to_owned()), 1 => Just("-3".to_owned())].boxed()
    } else {
        small.boxed()
    }
}

/// `tricks`: the constructs that multiply a value's length or build one up, too.
fn filtered(inner: BoxedStrategy<String>, tricks: bool) -> BoxedStrategy<String> {
    let allowed = prop::sample::select(vec!["upper", "lower", "title", "capitalize", "trim", "escape", "e", "length", "count", "first", "last"]);
    let safe = prop_oneof![
        3 => (inner.clone(), allowed).prop_map(|(e, f)| format!("({e})|{f}")),
        1 => (inner.clone(), inner.clone()).prop_map(|(e, d)| format!("({e})|default({d})")),
    ];
    if !tricks {
        return safe.boxed();
    }
    let other = prop::sample::select(vec!["list", "reverse", "string", "safe", "tojson", "indent", "batch", "center"]);
    prop_oneof![
        2 => safe,
        1 => (inner.clone(), other, number(tricks)).prop_map(|(e, f, n)| format!("({e})|{f}({n})")),
        1 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(e, a, b)| format!("({e})|replace({a}, {b})")),
        1 => (inner.clone(), inner).prop_map(|(e, j)| format!("({e})|join({j})")),
    ]
    .boxed()
}

fn expr(tricks: bool) -> BoxedStrategy<String> {
    let leaf = prop_oneof![8 => var(), 3 => literal(), 2 => number(tricks), u32::from(tricks) => Just("loop.index".to_owned())];
    leaf.prop_recursive(4, 48, 4, move |inner| {
        let inner = inner.boxed();
        let safe = prop_oneof![
            6 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} ~ {b}")),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            8 => filtered(inner.clone(), tricks),
            2 => number(tricks).prop_map(|n| format!("range({n})")),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}, {a}]")),
            2 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            2 => (inner.clone(), number(tricks)).prop_map(|(a, n)| format!("({a})[:{n}]")),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} is startingwith({b}))")),
            // Repeated joins, the twin that grows the values: n copies side by side.
            2 => (inner.clone(), 2usize..8).prop_map(|(a, n)| vec![format!("({a})"); n].join(" ~ ")),
        ];
        if !tricks {
            return safe.boxed();
        }
        prop_oneof![
            6 => safe,
            1 => (inner.clone(), number(tricks)).prop_map(|(a, n)| format!("({a}) * {n}")),
            1 => inner.clone().prop_map(|e| format!("range({e}|length)")),
            1 => (inner.clone(), inner).prop_map(|(a, b)| format!("loop.cycle({a}, {b})")),
        ]
        .boxed()
    })
    .boxed()
}

/// `{{`, `{%` with their whitespace controls.
fn open() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![("", ""), ("-", "-"), ("-", ""), ("", "-"), ("", "")])
}

fn stmt(tricks: bool) -> BoxedStrategy<String> {
    let e = move || expr(tricks);
    let safe_leaf = prop_oneof![
        10 => (open(), e()).prop_map(|((l, r), e)| format!("{{{{{l} {e} {r}}}}}")),
        3 => prop::sample::select(vec!["Hello ", "\n", "<p>", "}} %} #}", "{ x { "]).prop_map(str::to_owned),
        2 => e().prop_map(|e| format!("{{# {{{{ {e} }}}} #}}")),
        2 => e().prop_map(|e| format!("{{% raw %}}{{{{ {e} }}}}{{% endraw %}}")),
    ];
    let leaf = if tricks {
        prop_oneof![
            6 => safe_leaf,
            1 => (open(), e()).prop_map(|((l, r), e)| format!("{{%{l} set x = {e} {r}%}}{{{{ x }}}}")),
            1 => e().prop_map(|e| format!("{{% do range({e}) %}}")),
        ]
        .boxed()
    } else {
        safe_leaf.boxed()
    };
    leaf.prop_recursive(3, 24, 4, move |inner| {
        let body = prop::collection::vec(inner, 1..4).prop_map(|v| v.concat());
        let safe = prop_oneof![
            3 => (open(), e(), body.clone()).prop_map(|((l, r), e, b)| format!("{{%{l} for item in {e} {r}%}}{b}{{{{ item }}}}{{% endfor %}}")),
            3 => (e(), body.clone(), body.clone()).prop_map(|(e, a, b)| format!("{{% if {e} %}}{a}{{% else %}}{b}{{% endif %}}")),
            1 => (body.clone(), 2usize..12).prop_map(|(b, n)| b.repeat(n)),
        ];
        if !tricks {
            return safe.boxed();
        }
        prop_oneof![
            6 => safe,
            1 => (e(), body.clone()).prop_map(|(e, b)| format!("{{% for item in {e} recursive %}}{b}{{% endfor %}}")),
            1 => (e(), body.clone()).prop_map(|(e, b)| format!("{{% with y = {e} %}}{b}{{{{ y }}}}{{% endwith %}}")),
            1 => body.prop_map(|b| format!("{{% filter upper %}}{b}{{% endfilter %}}")),
        ]
        .boxed()
    })
    .boxed()
}

/// Half of them from the constructs a template may use, half with the tricks too.
fn template() -> impl Strategy<Value = EmailTemplate> {
    (any::<bool>().prop_flat_map(|tricks| prop::collection::vec(stmt(tricks), 1..4)), 0..3usize).prop_map(|(parts, place)| {
        let body = parts.concat();
        let mut t = EmailTemplate { subject: "Hi {{ contact_name }}".into(), text: "Hello".into(), html: "<p>Hello</p>".into(), sms: "Hi".into() };
        match place {
            0 => t.text = body,
            1 => t.html = body,
            _ => t.sms = body,
        }
        t
    })
}

/// Any text of at most `chars` characters, the ones that grow when cased or escaped among them.
fn text(chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['o', 'a', ' ', 'ß', 'ΐ', 'ŉ', '\u{1D4B2}', '<', '&', '"', '\'', 'W']), 0..=chars).prop_map(|v| v.into_iter().collect())
}

fn url(max: usize) -> impl Strategy<Value = String> {
    (0..=max - 20).prop_map(|n| format!("https://{}.example/claim", "w".repeat(n)))
}

fn contact_values() -> impl Strategy<Value = TemplateVars> {
    (text(200), text(200), text(200), url(2048), url(2048), text(240)).prop_map(|(contact_name, portal_name, tenant_name, claim_url, link, local)| TemplateVars {
        contact_name,
        portal_name,
        tenant_name,
        code: "7K3QD-M9XPT".to_owned().into(),
        link: format!("{link}?token={}", "t".repeat(43)).into(),
        claim_url,
        expires_at: "2026-12-31T12:00:00.000Z".into(),
        account_email: format!("{local}@example.net"),
    })
}

fn peak_of_renders(t: &EmailTemplate, vars: &TemplateVars) -> usize {
    let (_, email) = peak_of(|| render(t, vars));
    let (_, sms) = peak_of(|| render_sms(t, vars));
    email.max(sms)
}

#[test]
fn every_template_that_saves_renders_within_two_mebibytes() {
    // A fixed seed, so CI is repeatable; PROPTEST_CASES runs more (the seed moves with them).
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1500);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let (saved, refused, peak) = (Cell::new(0usize), Cell::new(0usize), Cell::new(0usize));
    let result = runner.run(&(template(), prop::collection::vec(contact_values(), 1..3)), |(t, contacts)| {
        // The check itself, which renders what it lets through, is held to the same bound.
        let (verdict, checking) = peak_of(|| validate(&t));
        peak.set(peak.get().max(checking));
        if checking > BOUND {
            return Err(TestCaseError::fail(format!("{checking} bytes at peak checking {t:?}")));
        }
        if verdict.is_err() {
            refused.set(refused.get() + 1);
            return Ok(());
        }
        saved.set(saved.get() + 1);
        for vars in contacts.iter().chain([&TemplateVars::longest()]) {
            let bytes = peak_of_renders(&t, vars);
            peak.set(peak.get().max(bytes));
            if bytes > BOUND {
                return Err(TestCaseError::fail(format!("{bytes} bytes at peak rendering {t:?}")));
            }
        }
        Ok(())
    });
    eprintln!("{} templates saved, {} refused; the largest render peaked at {} bytes (bound {BOUND})", saved.get(), refused.get(), peak.get());
    result.unwrap();
    // Not vacuous: the grammar makes both kinds, many of each.
    assert!(saved.get() >= 120 && refused.get() >= 120, "saved {}, refused {}", saved.get(), refused.get());
}

/// The two attacks of issue 32 and the largest templates the check lets through.
#[test]
fn the_reported_attacks_are_refused_and_the_worst_accepted_templates_stay_small() {
    let t = |body: String| EmailTemplate { subject: "Hi".into(), text: body, html: String::new(), sms: String::new() };
    let replaced = format!("{{{{ \"}}}}\" }}}}{{{{ contact_name{} }}}}", "|replace(\"o\", contact_name)".repeat(8));
    let twin = format!("{{{{ \"}}}}\" }}}}{{{{ contact_name{} }}}}", "|replace(\"o\", \"oooooooooo\")".repeat(8));
    for attack in [replaced, twin] {
        let (refusal, bytes) = peak_of(|| validate(&t(attack.clone())));
        assert!(refusal.is_err(), "{attack}");
        assert!(bytes < BOUND, "refusing took {bytes} bytes");
    }
    // Values near the limit, built over and over, printed small (the output cap is not what bounds them).
    let worst = [
        "{% for a in range(50) %}{% for b in range(50) %}{{ (claim_url|e ~ link|upper)|length }}{% endfor %}{% endfor %}".to_owned(),
        format!("{{% for i in range(30) %}}{{{{ ({})|length }}}}{{% endfor %}}", vec!["contact_name|upper"; 13].join(" ~ ")),
        format!("{{% for c in contact_name %}}{{{{ [{}]|length }}}}{{% endfor %}}", vec!["link"; 2].join(", ")),
        "{% for a in contact_name %}{% for b in link[:20] %}{{ (a ~ b ~ claim_url|e)|length }}{% endfor %}{% endfor %}".to_owned(),
    ];
    for body in worst {
        let template = EmailTemplate { subject: "Hi".into(), text: body.clone(), html: body.clone(), sms: String::new() };
        assert_eq!(validate(&template), Ok(()), "{body}");
        let bytes = peak_of_renders(&template, &TemplateVars::longest());
        eprintln!("{bytes:>8} bytes at peak: {body:.80}");
        assert!(bytes <= BOUND, "{bytes} bytes: {body}");
    }
}

//! The template check at save (issue 32): how long a refusal takes, beside
//! the floor of checking a template that saves (the built-in pickup email:
//! parse, bounds, compile and the renders with sample and longest values).
//!
//! The attacks are the ones the security review reported (a `"}}"` hiding
//! eight `replace` filters; its twin, which grows the sample values) and one
//! of each kind of refusal: a forbidden filter, `*`, a value over its bound,
//! a `range` too long, a render out of fuel, a render over its output cap.
//! Target: every refusal under 100 ms in a release build. No local stack needed.

use portal::domain::EmailKind;
use portal::mail::templates::{default_template, validate, EmailTemplate};
use std::time::{Duration, Instant};

fn text(body: String) -> EmailTemplate {
    EmailTemplate { subject: "Hi {{ contact_name }}".into(), text: body, html: "<p>Hi</p>".into(), sms: String::new() }
}

fn cases() -> Vec<(&'static str, EmailTemplate)> {
    let hidden = |filter: &str| format!("{{{{ \"}}}}\" }}}}{{{{ contact_name{} }}}}", filter.repeat(8));
    vec![
        ("\"}}\" + 8 × replace (the attack)", text(hidden("|replace(\"o\", contact_name)"))),
        ("\"}}\" + 8 × replace (its twin)", text(hidden("|replace(\"o\", \"oooooooooo\")"))),
        ("`*` on text", text("{{ contact_name * 100000000 }}".into())),
        ("join over a range", text("{{ range(100)|join(contact_name) }}".into())),
        ("50 × `~` (over 32 KiB)", text(format!("{{{{ {} }}}}", vec!["contact_name"; 50].join(" ~ ")))),
        ("range(100000)", text("{% for i in range(100000) %}x{% endfor %}".into())),
        ("set in a loop", text("{% for i in range(100) %}{% set a = contact_name ~ contact_name %}{% endfor %}".into())),
        ("out of fuel (renders)", text("{% for i in range(100) %}{% for j in range(100) %}{% for k in range(100) %}x{% endfor %}{% endfor %}{% endfor %}".into())),
        ("over 256 KiB (renders)", text("{% for i in range(100) %}{% for j in range(100) %}{{ claim_url }}{% endfor %}{% endfor %}".into())),
    ]
}

fn time(t: &EmailTemplate, runs: usize) -> (bool, Vec<Duration>) {
    let mut took = Vec::with_capacity(runs);
    let mut saved = false;
    for _ in 0..runs {
        let started = Instant::now();
        saved = std::hint::black_box(validate(std::hint::black_box(t))).is_ok();
        took.push(started.elapsed());
    }
    took.sort();
    (saved, took)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("template check at save, {runs} runs each, {profile} build; times in ms");
    let (_, floor) = time(&default_template(EmailKind::PickupCode), runs);
    let floor_p50 = floor[runs / 2];
    println!("{:<36} {:>8} {:>9} {:>9} {:>9}", "template", "verdict", "p50", "max", "p50/floor");
    println!("{:<36} {:>8} {:>9} {:>9} {:>9}", "floor: built-in pickup email", "saved", ms(floor_p50), ms(floor[runs - 1]), "1.0");
    let mut slowest = Duration::ZERO;
    for (name, t) in cases() {
        let (saved, took) = time(&t, runs);
        anyhow::ensure!(!saved, "{name}: saved, but it is an attack");
        slowest = slowest.max(took[runs - 1]);
        let ratio = took[runs / 2].as_secs_f64() / floor_p50.as_secs_f64();
        println!("{:<36} {:>8} {:>9} {:>9} {:>9.1}", name, "refused", ms(took[runs / 2]), ms(took[runs - 1]), ratio);
    }
    println!("slowest refusal: {} ms (target < 100 ms in a release build)", ms(slowest));
    Ok(())
}

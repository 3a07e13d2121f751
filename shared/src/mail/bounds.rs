//! How long a template's values can grow, read from minijinja's own parse.
//!
//! A template is checked on the tree minijinja's parser builds from it
//! (`minijinja::machinery::parse`), the same reading the renderer compiles,
//! so the check and the render cannot disagree about where a tag ends: a
//! `"}}"` inside a string, a comment, a `raw` block and whitespace control
//! are what the engine says they are.
//!
//! Only an allow-list of the tree is accepted: output, `if`, `for` over a
//! bounded iterable (not `recursive`, at most [`MAX_LOOP_DEPTH`] deep),
//! `autoescape`, the filters in [`FILTERS`], the tests in [`TESTS`] and the
//! one function `range` over numbers written in the template. No `set`,
//! `with`, macros, filter blocks or method calls: a value cannot be built up
//! across a loop. Every expression gets an upper bound on the bytes of its
//! value, from the longest value each variable may hold: `~` and `+` add
//! their operands, a filter that can lengthen its input (`upper`, `escape`)
//! multiplies by the most it can, and `*` (which repeats text) is refused
//! outright. A template whose expression could pass [`MAX_VALUE_BYTES`], or
//! whose loops could hold more than [`MAX_LIVE_BYTES`] at once, is refused
//! before it is ever rendered, so a refusal costs a parse, never a render.

use minijinja::machinery::{self, ast, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// The filters templates may use, none of which lengthens a value by more than a constant factor.
pub const FILTERS: [&str; 13] = ["upper", "lower", "title", "capitalize", "trim", "default", "d", "escape", "e", "length", "count", "first", "last"];
/// The tests (`is ...`) templates may use: each answers true or false.
pub const TESTS: [&str; 14] =
    ["defined", "undefined", "none", "odd", "even", "divisibleby", "number", "string", "true", "false", "startingwith", "endingwith", "eq", "ne"];
/// The one function templates may call.
pub const FUNCTIONS: [&str; 1] = ["range"];
/// The most bytes one expression's value may reach with the longest inputs.
pub const MAX_VALUE_BYTES: usize = 32 * 1024;
/// The most bytes the iterables of the loops around an expression and the expression itself may hold together.
pub const MAX_LIVE_BYTES: usize = 128 * 1024;
/// Loops inside loops, at most.
pub const MAX_LOOP_DEPTH: usize = 3;
/// The most numbers one `range(...)` may make.
pub const MAX_RANGE: i64 = 100;
/// Bytes a number, a boolean or `none` prints as, at most.
const SCALAR: usize = 48;
/// How much longer a character can get: case mapping (`ß` → `SS`, `ΐ` → three
/// characters) at most triples the bytes, HTML escaping (`"` → `&quot;`) and
/// the quoting of strings inside a printed list at most multiply them by six.
const CASE_GROWTH: usize = 3;
const ESCAPE_GROWTH: usize = 6;

/// Why a template is refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: Option<usize>,
    pub detail: String,
}

/// Parses `source` as the renderer will and checks every construct in it.
/// `longest` gives the most bytes a template variable can hold (`None`: not
/// a variable templates see; the unknown-variable check reports it).
pub fn check(source: &str, longest: &dyn Fn(&str) -> Option<usize>) -> Result<(), Refusal> {
    let tree = machinery::parse(source, "template", SyntaxConfig::default(), WhitespaceConfig::default())
        .map_err(|e| Refusal { line: e.line(), detail: e.to_string() })?;
    Walk { longest, scopes: Vec::new(), live: 0 }.stmt(&tree)
}

struct Walk<'a, 's> {
    longest: &'a dyn Fn(&str) -> Option<usize>,
    /// The loop variables in scope, innermost last, with their bounds.
    scopes: Vec<Vec<(&'s str, usize)>>,
    /// Bytes the iterables of the enclosing loops hold.
    live: usize,
}

fn refuse<T>(line: usize, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal { line: Some(line), detail: detail.into() })
}

fn tag_name(s: &ast::Stmt<'_>) -> &'static str {
    match s {
        ast::Stmt::WithBlock(_) => "with",
        ast::Stmt::Set(_) | ast::Stmt::SetBlock(_) => "set",
        ast::Stmt::FilterBlock(_) => "filter",
        ast::Stmt::Do(_) => "do",
        _ => "this tag",
    }
}

impl<'a, 's> Walk<'a, 's> {
    fn stmts(&mut self, body: &'s [ast::Stmt<'s>]) -> Result<(), Refusal> {
        body.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, s: &'s ast::Stmt<'s>) -> Result<(), Refusal> {
        match s {
            ast::Stmt::Template(t) => self.stmts(&t.children),
            ast::Stmt::EmitRaw(_) => Ok(()),
            ast::Stmt::EmitExpr(e) => self.top(&e.expr).map(drop),
            ast::Stmt::IfCond(c) => {
                self.top(&c.expr)?;
                self.stmts(&c.true_body)?;
                self.stmts(&c.false_body)
            }
            ast::Stmt::AutoEscape(a) => {
                self.top(&a.enabled)?;
                self.stmts(&a.body)
            }
            ast::Stmt::ForLoop(f) => {
                let line = usize::from(f.span().start_line);
                if f.recursive {
                    return refuse(line, "recursive loops are not allowed in email templates");
                }
                if self.scopes.len() >= MAX_LOOP_DEPTH {
                    return refuse(line, format!("loops may be at most {MAX_LOOP_DEPTH} deep in email templates"));
                }
                let held = self.top(&f.iter)?;
                let mut names = Vec::new();
                targets(&f.target, &mut names).map_err(|()| Refusal { line: Some(line), detail: "a loop assigns to names only".into() })?;
                // An item is no longer than its iterable; `loop` prints numbers, or an item (`loop.previtem`).
                let mut scope: Vec<(&str, usize)> = names.into_iter().map(|n| (n, held)).collect();
                scope.push(("loop", held.max(SCALAR)));
                self.scopes.push(scope);
                self.live += held;
                let inside = f.filter_expr.as_ref().map_or(Ok(0), |e| self.top(e)).and_then(|_| self.stmts(&f.body));
                self.live -= held;
                self.scopes.pop();
                inside?;
                self.stmts(&f.else_body)
            }
            other => {
                let line = stmt_line(other);
                let line = if line == 0 { None } else { Some(line) };
                Err(Refusal { line, detail: format!("`{{% {} %}}` is not allowed in email templates", tag_name(other)) })
            }
        }
    }

    /// An expression evaluated on its own (printed, tested, iterated).
    fn top(&mut self, e: &'s ast::Expr<'s>) -> Result<usize, Refusal> {
        let bound = self.expr(e)?;
        if self.live.saturating_add(bound) > MAX_LIVE_BYTES {
            return refuse(expr_line(e), format!("the loops here could hold more than {MAX_LIVE_BYTES} bytes at once with the longest values"));
        }
        Ok(bound)
    }

    fn var(&self, id: &str) -> usize {
        let bound = self.scopes.iter().rev().flatten().find(|(n, _)| *n == id).map(|(_, b)| *b);
        bound.or_else(|| (self.longest)(id)).unwrap_or(if FUNCTIONS.contains(&id) { SCALAR } else { 0 })
    }

    /// The most bytes `e`'s value can print as.
    fn expr(&self, e: &'s ast::Expr<'s>) -> Result<usize, Refusal> {
        let line = expr_line(e);
        let bound = match e {
            ast::Expr::Var(v) => self.var(v.id),
            ast::Expr::Const(c) => c.value.as_str().map_or_else(|| c.value.to_string().len().max(SCALAR), str::len),
            ast::Expr::Slice(s) => {
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part)?;
                }
                self.expr(&s.expr)?
            }
            ast::Expr::UnaryOp(u) => {
                self.expr(&u.expr)?;
                SCALAR
            }
            ast::Expr::BinOp(b) => {
                let (left, right) = (self.expr(&b.left)?, self.expr(&b.right)?);
                use ast::BinOpKind::*;
                match b.op {
                    Mul => return refuse(line, "`*` is not allowed in email templates (on text it repeats it)"),
                    Eq | Ne | Lt | Lte | Gt | Gte | In => SCALAR,
                    ScAnd | ScOr => left.max(right),
                    // Text and lists join; numbers stay numbers.
                    Add | Concat => left.saturating_add(right),
                    Sub | Div | FloorDiv | Pow => SCALAR,
                    Rem => left.saturating_add(right).max(SCALAR),
                }
            }
            ast::Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                let otherwise = i.false_expr.as_ref().map_or(Ok(0), |f| self.expr(f))?;
                self.expr(&i.true_expr)?.max(otherwise)
            }
            ast::Expr::Filter(f) => self.filter(f, line)?,
            ast::Expr::Test(t) => {
                if !TESTS.contains(&t.name) {
                    return refuse(line, format!("the test `{}` is not allowed; templates may use {}", t.name, TESTS.join(", ")));
                }
                self.expr(&t.expr)?;
                self.args(&t.args)?;
                SCALAR
            }
            ast::Expr::GetAttr(g) => self.expr(&g.expr)?,
            ast::Expr::GetItem(g) => {
                self.expr(&g.subscript_expr)?;
                self.expr(&g.expr)?
            }
            ast::Expr::Call(c) => self.call(c, line)?,
            ast::Expr::List(l) => self.sum(&l.items)?.saturating_mul(ESCAPE_GROWTH).saturating_add(4 * l.items.len()),
            ast::Expr::Map(m) => {
                let inner = self.sum(&m.keys)?.saturating_add(self.sum(&m.values)?);
                inner.saturating_mul(ESCAPE_GROWTH).saturating_add(6 * m.keys.len())
            }
            // `a < b < c`: true or false.
            ast::Expr::Compare(c) => {
                self.expr(&c.expr)?;
                for op in &c.ops {
                    self.expr(&op.expr)?;
                }
                SCALAR
            }
        };
        if bound > MAX_VALUE_BYTES {
            return refuse(line, format!("this expression could make a value of {bound} bytes with the longest values a contact may have; at most {MAX_VALUE_BYTES}"));
        }
        Ok(bound)
    }

    fn sum(&self, items: &'s [ast::Expr<'s>]) -> Result<usize, Refusal> {
        items.iter().try_fold(0usize, |total, e| Ok(total.saturating_add(self.expr(e)?)))
    }

    /// The arguments of a filter, test or call, each bounded, added up.
    fn args(&self, args: &'s [ast::CallArg<'s>]) -> Result<usize, Refusal> {
        args.iter().try_fold(0usize, |total, a| {
            let (ast::CallArg::Pos(e) | ast::CallArg::Kwarg(_, e) | ast::CallArg::PosSplat(e) | ast::CallArg::KwargSplat(e)) = a;
            Ok(total.saturating_add(self.expr(e)?))
        })
    }

    fn filter(&self, f: &'s ast::Filter<'s>, line: usize) -> Result<usize, Refusal> {
        if !FILTERS.contains(&f.name) {
            return refuse(line, format!("the filter `{}` is not allowed; templates may use {}", f.name, FILTERS.join(", ")));
        }
        let input = match &f.expr {
            Some(e) => self.expr(e)?,
            None => return refuse(line, "`{% filter %}` is not allowed in email templates"),
        };
        let args = self.args(&f.args)?;
        Ok(match f.name {
            "upper" | "lower" | "title" | "capitalize" => input.saturating_mul(CASE_GROWTH),
            "escape" | "e" => input.saturating_mul(ESCAPE_GROWTH),
            "length" | "count" => SCALAR,
            // The value, or the default in its place.
            "default" | "d" => input.max(args),
            _ => input, // trim, first, last
        })
    }

    fn call(&self, c: &'s ast::Call<'s>, line: usize) -> Result<usize, Refusal> {
        match &c.expr {
            ast::Expr::Var(v) if FUNCTIONS.contains(&v.id) => {}
            _ => return refuse(line, format!("only {} may be called in email templates", FUNCTIONS.map(|f| format!("`{f}(...)`")).join(", "))),
        }
        let written: Option<Vec<i64>> = c.args.iter().map(|a| if let ast::CallArg::Pos(e) = a { literal_int(e) } else { None }).collect();
        let count = match written.as_deref() {
            Some(&[stop]) => Some(stop.max(0)),
            Some(&[start, stop]) => Some((stop - start).max(0)),
            Some(&[start, stop, step]) if step != 0 => {
                let span = if step > 0 { stop - start } else { start - stop };
                Some(if span <= 0 { 0 } else { (span + step.abs() - 1) / step.abs() })
            }
            _ => None,
        };
        match count {
            Some(n) if n <= MAX_RANGE => Ok((n as usize).saturating_mul(SCALAR + 2)),
            _ => refuse(line, format!("`range` takes whole numbers written in the template and makes at most {MAX_RANGE}")),
        }
    }
}

/// A whole number written in the template (`3`, `-3`), not computed.
fn literal_int(e: &ast::Expr<'_>) -> Option<i64> {
    match e {
        ast::Expr::Const(c) if c.value.is_integer() => c.value.as_i64().filter(|n| n.abs() <= 1_000_000),
        ast::Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOpKind::Neg) => literal_int(&u.expr).map(|n| -n),
        _ => None,
    }
}

/// The names a loop assigns (`for a in`, `for a, b in`).
fn targets<'s>(e: &'s ast::Expr<'s>, names: &mut Vec<&'s str>) -> Result<(), ()> {
    match e {
        ast::Expr::Var(v) => {
            names.push(v.id);
            Ok(())
        }
        ast::Expr::List(l) => l.items.iter().try_for_each(|i| targets(i, names)),
        _ => Err(()),
    }
}

fn expr_line(e: &ast::Expr<'_>) -> usize {
    let line = match e {
        ast::Expr::Var(x) => x.span().start_line,
        ast::Expr::Const(x) => x.span().start_line,
        ast::Expr::Slice(x) => x.span().start_line,
        ast::Expr::UnaryOp(x) => x.span().start_line,
        ast::Expr::BinOp(x) => x.span().start_line,
        ast::Expr::IfExpr(x) => x.span().start_line,
        ast::Expr::Filter(x) => x.span().start_line,
        ast::Expr::Test(x) => x.span().start_line,
        ast::Expr::GetAttr(x) => x.span().start_line,
        ast::Expr::GetItem(x) => x.span().start_line,
        ast::Expr::Call(x) => x.span().start_line,
        ast::Expr::List(x) => x.span().start_line,
        ast::Expr::Map(x) => x.span().start_line,
        ast::Expr::Compare(x) => x.span().start_line,
    };
    usize::from(line)
}

fn stmt_line(s: &ast::Stmt<'_>) -> usize {
    let line = match s {
        ast::Stmt::WithBlock(x) => x.span().start_line,
        ast::Stmt::Set(x) => x.span().start_line,
        ast::Stmt::SetBlock(x) => x.span().start_line,
        ast::Stmt::FilterBlock(x) => x.span().start_line,
        ast::Stmt::Do(x) => x.span().start_line,
        _ => return 0,
    };
    usize::from(line)
}

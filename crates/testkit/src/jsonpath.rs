//! The subset of Kubernetes JSONPath that printer columns, `selectableFields` and scale
//! subresource paths use: `.a.b`, `['key']`, `[0]`, `[-1]`, `[*]`, `..name` and filters such as
//! `[?(@.type=="Ready")]`, optionally wrapped in `{…}`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Recursive(String),
    Filter(Filter),
}

#[derive(Clone, Debug, PartialEq)]
struct Filter {
    path: Vec<Step>,
    op: Option<(Op, Value)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a path such as `.status.conditions[?(@.type=="Ready")].status`.
    pub(crate) fn parse(src: &str) -> Result<Self, String> {
        let s = src.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(s)
            .trim();
        let s = s.strip_prefix('$').unwrap_or(s);
        let mut p = Parser {
            chars: s.chars().collect(),
            pos: 0,
        };
        let steps = p.steps(false)?;
        if p.pos != p.chars.len() {
            return Err(format!("unexpected {:?} in JSONPath {src:?}", p.rest()));
        }
        Ok(Self(steps))
    }

    /// Every value the path selects, in document order.
    pub(crate) fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.0, vec![root])
    }

    /// The first value the path selects.
    pub(crate) fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.find(root).into_iter().next()
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn rest(&self) -> String {
        self.chars[self.pos..].iter().collect()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars[self.pos..].iter().take(n).copied().eq(s.chars()) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '/') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Steps up to the end, or (inside a filter) up to an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    if self.eat("..") {
                        let name = self.ident();
                        if name.is_empty() {
                            return Err("expected a field name after '..'".to_owned());
                        }
                        steps.push(Step::Recursive(name));
                    } else {
                        self.pos += 1;
                        if self.eat("*") {
                            steps.push(Step::Wildcard);
                        } else {
                            let name = self.ident();
                            if !name.is_empty() {
                                steps.push(Step::Field(name));
                            }
                        }
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                Some(c) if in_filter && matches!(c, '=' | '!' | '<' | '>' | ')' | ' ') => break,
                Some(_) if !in_filter && steps.is_empty() => {
                    // A leading field without a dot, as in `metadata.name`.
                    let name = self.ident();
                    if name.is_empty() {
                        return Err(format!("unexpected {:?}", self.rest()));
                    }
                    steps.push(Step::Field(name));
                }
                Some(_) => return Err(format!("unexpected {:?}", self.rest())),
            }
        }
        Ok(steps)
    }

    fn bracket(&mut self) -> Result<Step, String> {
        let step = if self.eat("*") {
            Step::Wildcard
        } else if self.eat("?(") {
            self.skip_spaces();
            if !self.eat("@") {
                return Err("a filter must start with @".to_owned());
            }
            let path = self.steps(true)?;
            self.skip_spaces();
            let op = if self.eat("==") {
                Some(Op::Eq)
            } else if self.eat("!=") {
                Some(Op::Ne)
            } else if self.eat("<=") {
                Some(Op::Le)
            } else if self.eat(">=") {
                Some(Op::Ge)
            } else if self.eat("<") {
                Some(Op::Lt)
            } else if self.eat(">") {
                Some(Op::Gt)
            } else {
                None
            };
            let op = match op {
                Some(op) => {
                    self.skip_spaces();
                    Some((op, self.literal()?))
                }
                None => None,
            };
            self.skip_spaces();
            if !self.eat(")") {
                return Err("unterminated filter".to_owned());
            }
            Step::Filter(Filter { path, op })
        } else if matches!(self.peek(), Some('\'' | '"')) {
            match self.literal()? {
                Value::String(s) => Step::Field(s),
                other => return Err(format!("unexpected key {other}")),
            }
        } else {
            let start = self.pos;
            while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == '-') {
                self.pos += 1;
            }
            let digits: String = self.chars[start..self.pos].iter().collect();
            Step::Index(
                digits
                    .parse()
                    .map_err(|_| format!("invalid array index {digits:?}"))?,
            )
        };
        if !self.eat("]") {
            return Err("expected ']'".to_owned());
        }
        Ok(step)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c == q {
                        let s: String = self.chars[start..self.pos].iter().collect();
                        self.pos += 1;
                        return Ok(Value::String(s));
                    }
                    self.pos += 1;
                }
                Err("unterminated string".to_owned())
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_alphanumeric() || matches!(c, '.' | '-' | '+'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => word
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("unrecognized literal {word:?}")),
                }
            }
        }
    }
}

fn eval<'a>(steps: &[Step], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(name) => {
                    if let Some(x) = v.get(name.as_str()) {
                        next.push(x);
                    }
                }
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Recursive(name) => collect_recursive(v, name, &mut next),
                Step::Filter(f) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| filter_matches(f, item)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn collect_recursive<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x);
            }
            for child in m.values() {
                collect_recursive(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                collect_recursive(child, name, out);
            }
        }
        _ => {}
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let found = eval(&f.path, vec![item]);
    match &f.op {
        None => !found.is_empty(),
        Some((op, lit)) => found.iter().any(|v| compare(v, *op, lit)),
    }
}

fn compare(v: &Value, op: Op, lit: &Value) -> bool {
    if let (Some(a), Some(b)) = (v.as_f64(), lit.as_f64()) {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        };
    }
    match op {
        Op::Eq => v == lit,
        Op::Ne => v != lit,
        _ => match (v.as_str(), lit.as_str()) {
            (Some(a), Some(b)) => match op {
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            },
            _ => false,
        },
    }
}

/// Renders a value as client-go's JSONPath printer does for a `string` column: strings bare,
/// other values as Go's `fmt.Print` would (numbers without a trailing `.0`), objects as JSON.
pub(crate) fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"minReplicas": 1, "items": [1, 2, 3]},
            "status": {"conditions": [
                {"type": "AbleToScale", "status": "True"},
                {"type": "Ready", "status": "False", "observedGeneration": 3}
            ]}
        })
    }

    #[test]
    fn paths_select_values() {
        let d = doc();
        for (path, want) in [
            (".metadata.name", json!(["x"])),
            ("{.spec.minReplicas}", json!([1])),
            ("metadata.name", json!(["x"])),
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                json!(["False"]),
            ),
            (
                ".status.conditions[?(@.type=='AbleToScale')].status",
                json!(["True"]),
            ),
            (
                ".status.conditions[?(@.observedGeneration>2)].type",
                json!(["Ready"]),
            ),
            (
                ".status.conditions[?(@.observedGeneration)].type",
                json!(["Ready"]),
            ),
            (
                ".status.conditions[*].type",
                json!(["AbleToScale", "Ready"]),
            ),
            (".spec.items[-1]", json!([3])),
            (".spec.items[0]", json!([1])),
            (".metadata.labels['app.kubernetes.io/name']", json!(["web"])),
            ("..type", json!(["AbleToScale", "Ready"])),
            (".status.missing", json!([])),
        ] {
            let p = JsonPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let got: Vec<Value> = p.find(&d).into_iter().cloned().collect();
            assert_eq!(Value::Array(got), want, "{path}");
        }
    }

    #[test]
    fn bad_paths_are_errors() {
        for p in [".a[", ".a[?(@.b==)]", ".a[x]"] {
            assert!(JsonPath::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn values_print_like_go() {
        assert_eq!(print_value(&json!("a")), "a");
        assert_eq!(print_value(&json!(3)), "3");
        assert_eq!(print_value(&json!(1000.0)), "1000");
        assert_eq!(print_value(&json!(0.5)), "0.5");
        assert_eq!(print_value(&json!(true)), "true");
    }
}

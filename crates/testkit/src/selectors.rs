//! Label and field selectors, parsed and matched as `k8s.io/apimachinery` does.

use std::collections::BTreeSet;

use serde_json::Value;

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Self(reqs))
    }

    /// Whether the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(k: &str) -> Result<String, String> {
    let valid = !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(k.to_owned())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key \"{k}\""
        ))
    }
}

fn parse_set(rest: &str) -> Result<BTreeSet<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(part: &str) -> Result<LabelReq, String> {
    if let Some(k) = part.strip_prefix('!') {
        return Ok(LabelReq::NotExists(check_key(k.trim())?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelReq::NotEq(check_key(k.trim())?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(LabelReq::Eq(check_key(k.trim())?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(LabelReq::Eq(check_key(k.trim())?, v.trim().to_owned()));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default().trim();
    let rest = words.next().unwrap_or_default().trim();
    if rest.is_empty() {
        return Ok(LabelReq::Exists(check_key(key)?));
    }
    if let Some(r) = rest.strip_prefix("notin") {
        return Ok(LabelReq::NotIn(check_key(key)?, parse_set(r)?));
    }
    if let Some(r) = rest.strip_prefix("in") {
        return Ok(LabelReq::In(check_key(key)?, parse_set(r)?));
    }
    Err(format!(
        "unable to parse requirement: found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
    ))
}

/// One field requirement: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldReq {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A parsed `fieldSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(pub Vec<FieldReq>);

impl FieldSelector {
    /// Parses `a=b,c!=d` with the `\,` `\=` `\\` escapes of `fields.EscapeValue`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some(i) = find_unescaped(&part, "!=") {
                (&part[..i], &part[i + 2..], true)
            } else if let Some(i) = find_unescaped(&part, "==") {
                (&part[..i], &part[i + 2..], false)
            } else if let Some(i) = find_unescaped(&part, "=") {
                (&part[..i], &part[i + 1..], false)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            reqs.push(FieldReq {
                field: field.trim().to_owned(),
                value: unescape(value),
                negated,
            });
        }
        Ok(Self(reqs))
    }

    /// Whether the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Matches using `lookup(field)`, which returns the object's value of a supported field.
    pub(crate) fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| {
            let actual = lookup(&r.field).unwrap_or_default();
            (actual == r.value) != r.negated
        })
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    parts.push(cur);
    parts
}

fn find_unescaped(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders a `metav1.LabelSelector` (`matchLabels` and `matchExpressions`) as a selector
/// string, as `metav1.FormatLabelSelector` does for the Scale subresource's `status.selector`.
pub(crate) fn format_label_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut values = values;
            values.sort_unstable();
            match e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_owned()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn label_selectors_match() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("tier,app", true),
            ("!tier", false),
            ("missing", false),
            ("!missing", true),
            ("app in (db), tier", false),
            ("app=web,tier in (front, back)", true),
        ] {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&o), want, "{sel}");
        }
        assert!(LabelSelector::parse("a b c").is_err());
    }

    #[test]
    fn field_selectors_unescape() {
        let s = FieldSelector::parse(
            "involvedObject.name=a\\,b,involvedObject.kind==AviAutoscaler,type!=Normal",
        )
        .unwrap();
        assert_eq!(s.0.len(), 3);
        assert_eq!(s.0[0].value, "a,b");
        assert!(s.matches(|f| match f {
            "involvedObject.name" => Some("a,b".into()),
            "involvedObject.kind" => Some("AviAutoscaler".into()),
            "type" => Some("Warning".into()),
            _ => None,
        }));
        assert!(!s.matches(|_| None));
    }

    #[test]
    fn label_selectors_format() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "x", "operator": "DoesNotExist"}]});
        assert_eq!(format_label_selector(&s), "app=web,tier in (a,b),!x");
    }
}

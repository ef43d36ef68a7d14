//! Decoding of the Kubernetes protobuf encoding for the few request bodies `kubectl create`
//! sends that way (`kubectl create namespace | secret | configmap | serviceaccount` use the
//! typed client, which writes `application/vnd.kubernetes.protobuf`).
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message whose `raw` field
//! holds the object. Field numbers are those of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`. Empty values (which the Go encoder
//! writes for every optional field) are dropped, as JSON's `omitempty` would.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The media type of the protobuf encoding.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Time,
    Msg(&'static [Field]),
    RepeatedStr,
    RepeatedMsg(&'static [Field]),
    MapStr,
    MapBytes,
}

type Field = (u64, &'static str, Kind);

const OWNER_REFERENCE: &[Field] = &[
    (1, "kind", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
    (5, "apiVersion", Kind::Str),
    (6, "controller", Kind::Bool),
    (7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
    (5, "uid", Kind::Str),
    (6, "resourceVersion", Kind::Str),
    (7, "generation", Kind::Int),
    (8, "creationTimestamp", Kind::Time),
    (9, "deletionTimestamp", Kind::Time),
    (10, "deletionGracePeriodSeconds", Kind::Int),
    (11, "labels", Kind::MapStr),
    (12, "annotations", Kind::MapStr),
    (13, "ownerReferences", Kind::RepeatedMsg(OWNER_REFERENCE)),
    (14, "finalizers", Kind::RepeatedStr),
];

const NAMESPACE: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Kind::Msg(&[(1, "finalizers", Kind::RepeatedStr)]),
    ),
    (3, "status", Kind::Msg(&[(1, "phase", Kind::Str)])),
];

const SECRET: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapBytes),
    (3, "type", Kind::Str),
    (4, "stringData", Kind::MapStr),
    (5, "immutable", Kind::Bool),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (2, "data", Kind::MapStr),
    (3, "binaryData", Kind::MapBytes),
    (4, "immutable", Kind::Bool),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[(1, "name", Kind::Str)];

const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", Kind::Msg(OBJECT_META)),
    (
        3,
        "imagePullSecrets",
        Kind::RepeatedMsg(LOCAL_OBJECT_REFERENCE),
    ),
    (4, "automountServiceAccountToken", Kind::Bool),
];

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".to_owned())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.buf.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    /// The next `(field number, wire value)`.
    fn next(&mut self) -> Result<(u64, Wire<'a>), String> {
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Wire::Skipped
            }
            2 => Wire::Bytes(self.bytes()?),
            5 => {
                self.pos += 4;
                Wire::Skipped
            }
            t => return Err(format!("unsupported wire type {t}")),
        };
        if self.pos > self.buf.len() {
            return Err("truncated field".to_owned());
        }
        Ok((key >> 3, wire))
    }
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skipped,
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string field is not UTF-8".to_owned())
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while !r.done() {
        match r.next()? {
            (1, Wire::Bytes(k)) => key = text(k)?,
            (2, Wire::Bytes(v)) if bytes_value => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(v));
            }
            (2, Wire::Bytes(v)) => value = json!(text(v)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn time(b: &[u8]) -> Result<Option<String>, String> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut seconds = 0i64;
    while !r.done() {
        if let (1, Wire::Varint(s)) = r.next()? {
            seconds = s as i64;
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    let t = jiff::Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
    Ok(Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn message(b: &[u8], fields: &[Field]) -> Result<Map<String, Value>, String> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while !r.done() {
        let (num, wire) = r.next()?;
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = (*name).to_owned();
        match (*kind, wire) {
            (Kind::Str, Wire::Bytes(v)) => {
                let s = text(v)?;
                if !s.is_empty() {
                    out.insert(name, json!(s));
                }
            }
            (Kind::Int, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, json!(v as i64));
                }
            }
            (Kind::Bool, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, json!(true));
                }
            }
            (Kind::Time, Wire::Bytes(v)) => {
                if let Some(t) = time(v)? {
                    out.insert(name, json!(t));
                }
            }
            (Kind::Msg(sub), Wire::Bytes(v)) => {
                let m = message(v, sub)?;
                if !m.is_empty() {
                    out.insert(name, Value::Object(m));
                }
            }
            (Kind::RepeatedStr, Wire::Bytes(v)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(json!(text(v)?));
                }
            }
            (Kind::RepeatedMsg(sub), Wire::Bytes(v)) => {
                let item = Value::Object(message(v, sub)?);
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(item);
                }
            }
            (k @ (Kind::MapStr | Kind::MapBytes), Wire::Bytes(v)) => {
                let (key, value) = map_entry(v, matches!(k, Kind::MapBytes))?;
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Value::Object(m) = map {
                    m.insert(key, value);
                }
            }
            _ => return Err(format!("field {name} has an unexpected wire type")),
        }
    }
    Ok(out)
}

/// Decodes a protobuf-encoded object into its JSON form. Fails for kinds it does not know.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("the protobuf body does not start with the k8s magic number")?;
    let mut r = Reader { buf: rest, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !r.done() {
        match r.next()? {
            (1, Wire::Bytes(tm)) => {
                let m = message(tm, &[(1, "apiVersion", Kind::Str), (2, "kind", Kind::Str)])?;
                let s = |k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                api_version = s("apiVersion");
                kind = s("kind");
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        _ => {
            return Err(format!(
                "protobuf bodies are only decoded for Namespace, Secret, ConfigMap and ServiceAccount, not {api_version} {kind}; send JSON"
            ));
        }
    };
    let mut obj = message(raw, schema)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_kubectl_create_namespace_sends() {
        // Captured from `kubectl create namespace demo`.
        let body = b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1c\n\x14\n\x04demo\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00\"\x00";
        let v = decode(body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        );
    }

    fn field(num: u64, wire: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | wire) as u8];
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_secrets_with_maps() {
        let meta = [
            field(1, 2, b"s"),
            field(3, 2, b"ns"),
            field(11, 2, &[field(1, 2, b"a"), field(2, 2, b"b")].concat()),
        ]
        .concat();
        let entry = [field(1, 2, b"password"), field(2, 2, b"hunter2")].concat();
        let raw = [
            field(1, 2, &meta),
            field(2, 2, &entry),
            field(3, 2, b"Opaque"),
        ]
        .concat();
        let tm = [field(1, 2, b"v1"), field(2, 2, b"Secret")].concat();
        let body = [b"k8s\0".to_vec(), field(1, 2, &tm), field(2, 2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v["metadata"],
            json!({"name": "s", "namespace": "ns", "labels": {"a": "b"}})
        );
        assert_eq!(v["data"]["password"], "aHVudGVyMg==");
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        assert!(decode(b"{}").is_err());
        let tm = [field(1, 2, b"apps/v1"), field(2, 2, b"Deployment")].concat();
        let body = [b"k8s\0".to_vec(), field(1, 2, &tm)].concat();
        assert!(decode(&body).unwrap_err().contains("send JSON"));
        assert!(decode(b"k8s\0\x0a\xff").is_err());
    }
}

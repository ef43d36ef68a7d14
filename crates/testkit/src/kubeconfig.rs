//! Kubeconfig files for clients of the stand-in.

use serde_json::json;

/// The cluster, user and context name in written kubeconfigs.
pub const CONTEXT: &str = "kube-standin";

/// A kubeconfig whose current context points at `server_url` with namespace `namespace`.
/// The stand-in needs no credentials, so the user entry is empty.
pub fn kubeconfig_yaml(server_url: &str, namespace: &str) -> String {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {"server": server_url}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
    });
    serde_yaml::to_string(&doc).expect("a JSON document always serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_points_at_the_server() {
        let y = kubeconfig_yaml("http://127.0.0.1:1234/_client/a", "default");
        let v: serde_json::Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1234/_client/a"
        );
        assert_eq!(v["current-context"], CONTEXT);
        assert_eq!(v["contexts"][0]["context"]["namespace"], "default");
    }
}

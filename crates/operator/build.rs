//! Records the commit the binary is built from, for its User-Agent and `--version`.
//!
//! `AVI_AUTOSCALER_GIT_SHA` wins (builds from a tarball or in a container, where `.git` is
//! absent, pass it); otherwise `git rev-parse`; otherwise `unknown`. Only characters that are
//! valid in an HTTP header and stable across builds are kept.

use std::process::Command;

const OVERRIDE: &str = "AVI_AUTOSCALER_GIT_SHA";

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then_some(())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn sanitized(sha: &str) -> Option<String> {
    let sha = sha.trim();
    let valid = !sha.is_empty()
        && sha.len() <= 64
        && sha
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    valid.then(|| sha.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    let sha = match std::env::var(OVERRIDE) {
        Ok(value) if !value.trim().is_empty() => sanitized(&value),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, and the branch it points at.
            for path in
                ["HEAD"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(git(&["symbolic-ref", "-q", "HEAD"]))
            {
                if let Some(file) =
                    git(&["rev-parse", "--path-format=absolute", "--git-path", &path])
                {
                    println!("cargo:rerun-if-changed={file}");
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).and_then(|s| sanitized(&s))
        }
    };
    println!(
        "cargo:rustc-env={OVERRIDE}={}",
        sha.as_deref().unwrap_or("unknown")
    );
}

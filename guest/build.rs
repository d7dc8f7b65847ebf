//! Embeds the API contract: docs/openapi.yaml, converted to JSON, is served at
//! `GET /openapi.json`, so the document a binary serves is the one it was
//! built with.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    let dir = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .ok_or_else(|| format!("cargo did not set {var}"))
    };
    let source = dir("CARGO_MANIFEST_DIR")?.join("../docs/openapi.yaml");
    println!("cargo:rerun-if-changed={}", source.display());
    let yaml = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let document: serde_json::Value = serde_yaml::from_str(&yaml)
        .map_err(|e| format!("{} is not valid YAML: {e}", source.display()))?;
    let out = dir("OUT_DIR")?.join("openapi.json");
    std::fs::write(&out, document.to_string())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}

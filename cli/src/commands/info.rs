//! info: what the server is and what it currently asks of clients.

use serde_json::json;

use super::Ctx;
use crate::error::Error;

pub fn info(ctx: &Ctx) -> Result<(), Error> {
    let client = ctx.client()?;
    let about = client.get("/", &[])?.ok_json()?;
    let mut pow = client.get("/challenge", &[])?.ok_json()?;
    if let Some(o) = pow.as_object_mut() {
        // A challenge handed out just for display; it is no use to anyone.
        o.remove("token");
        o.remove("nonce");
    }
    let doc = json!({
        "server": client.base(),
        "name": about["name"],
        "version": about["version"],
        "identity": client.fingerprint(),
        "pow": pow,
    });
    ctx.out.result(&doc, || {
        let mut lines = vec![
            format!("server:        {}", client.base()),
            format!(
                "software:      {} {}",
                about["name"].as_str().unwrap_or("?"),
                about["version"].as_str().unwrap_or("?")
            ),
            format!(
                "identity:      {}",
                client
                    .fingerprint()
                    .unwrap_or("anonymous (no client certificate)")
            ),
        ];
        lines.push(if pow["enabled"] == json!(true) {
            let elevated = if pow["elevated"] == json!(true) {
                format!(
                    " (raised from {} under load)",
                    pow["base_difficulty"].as_u64().unwrap_or(0)
                )
            } else {
                String::new()
            };
            format!(
                "proof-of-work: {} bits{elevated}",
                pow["difficulty"].as_u64().unwrap_or(0)
            )
        } else {
            "proof-of-work: off".into()
        });
        lines.join("\n")
    });
    Ok(())
}

//! info (what the server is and what it currently asks of clients) and shorten.

use serde_json::{Value, json};
use ureq::http::Method;

use super::Ctx;
use crate::args::ShortenArgs;
use crate::client::new_id;
use crate::error::Error;
use crate::output::format_time;

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

pub fn shorten(ctx: &Ctx, args: ShortenArgs) -> Result<(), Error> {
    let client = ctx.client()?;
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    if let Some(secs) = args.expiry {
        headers.push(("X-Expiry", secs.to_string()));
    }
    let body = json!({ "url": args.url }).to_string().into_bytes();
    let reply = client.send_with_pow("/challenge", Method::POST, "/s", &headers, &body)?;
    let mut doc: Value = reply.ok_json()?;
    let id = new_id(&doc)?;
    let url = format!("{}/s/{id}", client.base());
    doc["url"] = json!(url);
    ctx.out.result(&doc, || {
        format!(
            "{url}\n  -> {}\n  expires {}",
            doc["target_url"].as_str().unwrap_or("?"),
            format_time(&doc["expires_at"])
        )
    });
    Ok(())
}

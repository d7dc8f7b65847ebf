//! shorten: a short URL for a long one, through the server's `POST /s`.

use serde_json::{Value, json};
use ureq::http::Method;

use super::Ctx;
use crate::args::ShortenArgs;
use crate::client::new_id;
use crate::error::Error;
use crate::output::format_time;

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

//! list, search, export: the owner's view over `GET /pastes`.

use std::path::Path;

use serde_json::{Value, json};

use super::{Ctx, password_header, query_escape};
use crate::args::{ExportArgs, ListArgs, SearchArgs};
use crate::client::Client;
use crate::error::Error;
use crate::files::write_public;
use crate::output::{format_size, format_time};

/// The server's largest page.
const PAGE: u32 = 1000;

pub fn list(ctx: &Ctx, args: ListArgs) -> Result<(), Error> {
    let client = ctx.client()?;
    let doc = fetch(&client, &page_query(&args), &[])?;
    ctx.out.result(&doc, || table(&doc));
    Ok(())
}

pub fn search(ctx: &Ctx, args: SearchArgs) -> Result<(), Error> {
    let client = ctx.client()?;
    let mut filters = Vec::new();
    if let Some(t) = &args.mime_type {
        filters.push(format!("type={}", query_escape(t)));
    }
    if let Some(t) = args.after {
        filters.push(format!("after={t}"));
    }
    if let Some(t) = args.before {
        filters.push(format!("before={t}"));
    }
    let doc = fetch(&client, &page_query(&args.page), &filters)?;
    ctx.out.result(&doc, || table(&doc));
    Ok(())
}

fn page_query(args: &ListArgs) -> Vec<String> {
    let mut q = vec![
        format!("limit={}", args.limit),
        format!("offset={}", args.offset),
    ];
    if args.all {
        q.push("all=1".into());
    }
    q
}

fn fetch(client: &Client, page: &[String], filters: &[String]) -> Result<Value, Error> {
    let query = [page, filters].concat().join("&");
    client.get(&format!("/pastes?{query}"), &[])?.ok_json()
}

fn table(doc: &Value) -> String {
    let pastes = doc["pastes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if pastes.is_empty() {
        return "no pastes".into();
    }
    let mut lines = vec![format!(
        "{:<16}  {:>9}  {:<24}  {:<20}  {:<20}  {}",
        "ID", "SIZE", "TYPE", "CREATED", "EXPIRES", "FLAGS NAME"
    )];
    for p in pastes {
        let mut flags = String::new();
        if p["burn_after_read"] == json!(true) {
            flags.push('B');
        }
        if p["password_protected"] == json!(true) {
            flags.push('P');
        }
        lines.push(format!(
            "{:<16}  {:>9}  {:<24}  {:<20}  {:<20}  {:<5} {}",
            p["id"].as_str().unwrap_or("?"),
            format_size(p["size"].as_u64().unwrap_or(0)),
            p["mime_type"].as_str().unwrap_or("?"),
            format_time(&p["created_at"]),
            format_time(&p["expires_at"]),
            flags,
            p["display_name"].as_str().unwrap_or(""),
        ));
    }
    let total = doc["total"].as_u64().unwrap_or(0);
    let shown = u64::try_from(pastes.len()).unwrap_or(u64::MAX);
    if total > shown {
        lines.push(format!("({shown} of {total}; see --limit and --offset)"));
    }
    lines.join("\n")
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> Result<(), Error> {
    let client = ctx.client()?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| Error::local(&format!("cannot create {}", args.output.display()), e))?;
    let pastes = all_pastes(&client)?;
    let headers = password_header(args.password.as_ref());
    let mut manifest = Vec::new();
    let (mut written, mut skipped) = (0, 0);
    for p in &pastes {
        let id = p["id"].as_str().unwrap_or_default();
        let mut entry = json!({
            "id": id, "mime_type": p["mime_type"], "size": p["size"],
            "created_at": p["created_at"], "expires_at": p["expires_at"],
            "display_name": p["display_name"],
        });
        // Reading a burn-after-read paste deletes it: an export must not.
        let reason = if p["burn_after_read"] == json!(true) {
            Some("burn-after-read (reading it would delete it)".to_owned())
        } else if p["password_protected"] == json!(true) && args.password.is_none() {
            Some("password-protected (give -p)".to_owned())
        } else {
            let reply = client.get(&format!("/{id}/raw"), &headers)?;
            if reply.is_success() {
                let name = format!("{id}.{}", extension(p["mime_type"].as_str().unwrap_or("")));
                write_public(&args.output.join(&name), &reply.body)?;
                entry["file"] = json!(name);
                written += 1;
                None
            } else {
                Some(reply.into_error().to_string())
            }
        };
        if let Some(r) = reason {
            ctx.out.note(&format!("skipped {id}: {r}"));
            entry["skipped"] = json!(r);
            skipped += 1;
        }
        manifest.push(entry);
    }
    let doc = json!({
        "directory": args.output.display().to_string(),
        "exported": written, "skipped": skipped, "pastes": manifest,
    });
    write_manifest(&args.output, &doc)?;
    ctx.out.result(&doc, || {
        format!(
            "exported {written} pastes to {} ({skipped} skipped); index in manifest.json",
            args.output.display()
        )
    });
    Ok(())
}

fn write_manifest(dir: &Path, doc: &Value) -> Result<(), Error> {
    let text = serde_json::to_vec_pretty(doc).map_err(|e| Error::local("manifest", e))?;
    write_public(&dir.join("manifest.json"), &text)
}

/// Every paste of the caller, page by page.
fn all_pastes(client: &Client) -> Result<Vec<Value>, Error> {
    let mut all = Vec::new();
    loop {
        let offset = all.len();
        let doc = fetch(
            client,
            &[format!("limit={PAGE}"), format!("offset={offset}")],
            &[],
        )?;
        let page = doc["pastes"].as_array().cloned().unwrap_or_default();
        let total = doc["total"]
            .as_u64()
            .and_then(|t| usize::try_from(t).ok())
            .unwrap_or(0);
        let empty = page.is_empty();
        all.extend(page);
        if empty || all.len() >= total {
            return Ok(all);
        }
    }
}

/// A file extension for the MIME types pastes commonly have.
fn extension(mime: &str) -> &'static str {
    match mime {
        "text/plain" => "txt",
        "text/html" => "html",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "application/json" => "json",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/gzip" => "gz",
        "application/x-tar" => "tar",
        "application/wasm" => "wasm",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

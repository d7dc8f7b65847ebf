//! create, get, delete, update: one paste at a time.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use serde_json::{Value, json};
use ureq::http::Method;

use super::{Ctx, password_header, read_input};
use crate::args::{CreateArgs, DeleteArgs, GetArgs, UpdateArgs};
use crate::client::{Client, new_id};
use crate::encryption::PasteKey;
use crate::error::Error;
use crate::files::{is_terminal_safe, write_public};
use crate::output::{format_size, format_time};
use crate::refs;

const OCTET_STREAM: &str = "application/octet-stream";

pub fn create(ctx: &Ctx, args: CreateArgs) -> Result<(), Error> {
    let content = read_input(args.file.as_deref())?;
    let client = ctx.client()?;
    let (body, key) = seal_unless(args.no_encrypt, content)?;
    let mut headers = password_header(args.password.as_ref());
    if key.is_some() {
        headers.push(("Content-Type", OCTET_STREAM.into()));
    }
    if args.burn {
        headers.push(("X-Burn-After-Read", "true".into()));
    }
    if let Some(secs) = args.expiry {
        headers.push(("X-Expiry", secs.to_string()));
    }
    if let Some(name) = &args.display_name {
        headers.push(("X-Display-Name", name.clone()));
    }
    let reply = client.send_with_pow("/challenge", Method::POST, "/", &headers, &body)?;
    let mut doc = reply.ok_json()?;
    let id = new_id(&doc)?;
    let url = paste_url(&client, &id, key.as_ref());
    doc["url"] = json!(url);
    doc["raw"] = json!(format!("{}/{id}/raw", client.base()));
    if let Some(k) = &key {
        doc["key"] = json!(k.to_fragment());
        doc["encrypted"] = json!(true);
    }
    ctx.out.result(&doc, || {
        let mut text = url.clone();
        if doc["burn_after_read"] == json!(true) {
            text.push_str("\n  burns when first read");
        }
        text.push_str(&format!("\n  expires {}", format_time(&doc["expires_at"])));
        text
    });
    Ok(())
}

/// Seals `content` with a fresh key unless told not to.
fn seal_unless(plain: bool, content: Vec<u8>) -> Result<(Vec<u8>, Option<PasteKey>), Error> {
    if plain {
        return Ok((content, None));
    }
    let key = PasteKey::generate();
    let sealed = key
        .seal(&content)
        .map_err(|_| Error::Local("the content is too large to encrypt (over 64 GiB)".into()))?;
    Ok((sealed, Some(key)))
}

fn paste_url(client: &Client, id: &str, key: Option<&PasteKey>) -> String {
    match key {
        Some(k) => format!("{}/{id}#{}", client.base(), k.to_fragment()),
        None => format!("{}/{id}", client.base()),
    }
}

pub fn get(ctx: &Ctx, args: GetArgs) -> Result<(), Error> {
    let r = refs::parse(&args.paste)?;
    // Parse the key before any request: a burn-after-read paste must not
    // be burnt by a read that cannot decrypt it.
    let key = r.key.as_deref().map(PasteKey::from_fragment).transpose()?;
    let client = ctx.client_for(r.server.as_deref())?;
    let headers = password_header(args.password.as_ref());
    if args.meta {
        let doc = client.get(&format!("/{}", r.id), &headers)?.ok_json()?;
        ctx.out.result(&doc, || describe(&doc));
        return Ok(());
    }
    let reply = client.get(&format!("/{}/raw", r.id), &headers)?;
    if !reply.is_success() {
        return Err(reply.into_error());
    }
    let mime = reply
        .header("content-type")
        .unwrap_or(OCTET_STREAM)
        .to_owned();
    let burnt = reply.header("x-burn-after-read") == Some("true");
    let content = match &key {
        Some(k) => k.open(&reply.body).map_err(|e| {
            let mut message = e.to_string();
            if burnt {
                message.push_str(" (it was a burn-after-read paste: the server has deleted it)");
            }
            Error::Decrypt(message)
        })?,
        None => reply.body,
    };
    let summary = json!({
        "id": r.id, "size": content.len(), "mime_type": mime, "decrypted": key.is_some(),
    });
    match args.output.as_deref() {
        Some(p) if p == Path::new("-") => write_stdout(&content),
        Some(p) => {
            write_public(p, &content)?;
            let mut doc = summary;
            doc["path"] = json!(p.display().to_string());
            ctx.out.result(&doc, || {
                format!(
                    "wrote {} to {}",
                    format_size(len_u64(&content)),
                    p.display()
                )
            });
            Ok(())
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() && !is_terminal_safe(&content) && !confirm_binary(&content)? {
                return Err(Error::Local(format!(
                    "not printed: the content is binary ({}, {}); write it with -o FILE (or -o - to force)",
                    mime,
                    format_size(len_u64(&content)),
                )));
            }
            write_stdout(&content)
        }
    }
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn write_stdout(content: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(content)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::local("cannot write to stdout", e))
}

/// Asks on the terminal before printing binary content; refuses without a terminal to ask on.
fn confirm_binary(content: &[u8]) -> Result<bool, Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    eprint!(
        "The content is binary ({}); printing it can garble the terminal. Print anyway? [y/N] ",
        format_size(len_u64(content))
    );
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::local("cannot read the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn describe(doc: &Value) -> String {
    let mut lines = vec![
        format!("id:       {}", doc["id"].as_str().unwrap_or("?")),
        format!("type:     {}", doc["mime_type"].as_str().unwrap_or("?")),
        format!(
            "size:     {}",
            format_size(doc["size"].as_u64().unwrap_or(0))
        ),
        format!("created:  {}", format_time(&doc["created_at"])),
        format!("expires:  {}", format_time(&doc["expires_at"])),
    ];
    if doc["password_protected"] == json!(true) {
        lines.push("password: yes".into());
    }
    if let Some(name) = doc["display_name"].as_str() {
        lines.push(format!("name:     {name}"));
    }
    lines.join("\n")
}

pub fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<(), Error> {
    let mut deleted = Vec::new();
    for raw in &args.pastes {
        let r = refs::parse(raw)?;
        let client = ctx.client_for(r.server.as_deref())?;
        client
            .send(Method::DELETE, &format!("/{}", r.id), &[], None)?
            .ok_json()?;
        ctx.out.note(&format!("deleted {}", r.id));
        deleted.push(r.id);
    }
    ctx.out.result(&json!({ "deleted": deleted }), String::new);
    Ok(())
}

pub fn update(ctx: &Ctx, args: UpdateArgs) -> Result<(), Error> {
    let r = refs::parse(&args.paste)?;
    let client = ctx.client_for(r.server.as_deref())?;
    let (body, key) = match &args.file {
        Some(f) => {
            let (body, key) = seal_unless(args.no_encrypt, read_input(Some(f))?)?;
            (Some(body), key)
        }
        None => (None, None),
    };
    let mut headers = password_header(args.password.as_ref());
    if args.remove_password {
        headers.push(("X-Remove-Password", "true".into()));
    }
    if let Some(secs) = args.extend {
        headers.push(("X-Extend-Expiry", secs.to_string()));
    }
    if let Some(name) = &args.display_name {
        headers.push(("X-Display-Name", name.clone()));
    }
    if args.remove_name {
        headers.push(("X-Remove-Display-Name", "true".into()));
    }
    if body.is_none() && headers.is_empty() {
        return Err(Error::Usage(
            "nothing to update: give new content (-f FILE) or -p, --remove-password, -x, -n, --remove-name"
                .into(),
        ));
    }
    if key.is_some() {
        headers.push(("Content-Type", OCTET_STREAM.into()));
    }
    let mut doc = client
        .send(Method::PUT, &format!("/{}", r.id), &headers, body)?
        .ok_json()?;
    let url = paste_url(&client, &r.id, key.as_ref());
    doc["url"] = json!(url);
    if let Some(k) = &key {
        doc["key"] = json!(k.to_fragment());
    }
    ctx.out.result(&doc, || {
        let mut text = format!("updated {url}");
        if key.is_some() {
            text.push_str("\n  new content, new key: the old URL no longer decrypts it");
        }
        text.push_str(&format!("\n  expires {}", format_time(&doc["expires_at"])));
        text
    });
    Ok(())
}

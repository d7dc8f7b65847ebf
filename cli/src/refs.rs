//! What users type to name a paste: `ID`, `ID#key`, or the URL `fpaste`
//! printed (`https://host/prefix/ID#key`, also with `/raw`).

use crate::error::Error;

#[derive(Debug, PartialEq, Eq)]
pub struct PasteRef {
    /// The server of a full URL (scheme, host and prefix); none for a bare ID.
    pub server: Option<String>,
    pub id: String,
    /// The URL fragment: the decryption key.
    pub key: Option<String>,
}

pub fn parse(raw: &str) -> Result<PasteRef, Error> {
    let raw = raw.trim();
    let (rest, key) = match raw.split_once('#') {
        Some((rest, key)) if !key.is_empty() => (rest, Some(key.to_owned())),
        Some((rest, _)) => (rest, None),
        None => (raw, None),
    };
    let (server, path) = if let Some(scheme_end) = rest.find("://") {
        let rest = rest.trim_end_matches('/');
        let rest = rest.strip_suffix("/raw").unwrap_or(rest);
        match rest.rfind('/') {
            Some(slash) if slash > scheme_end + 2 => {
                (Some(rest[..slash].to_owned()), &rest[slash + 1..])
            }
            _ => {
                return Err(Error::Usage(format!(
                    "`{raw}` has no paste ID after the server address"
                )));
            }
        }
    } else {
        (None, rest)
    };
    // IDs go into URL paths: anything but these characters could walk to another route.
    if path.is_empty()
        || !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Usage(format!(
            "`{raw}` is not a paste ID or URL (IDs are letters and digits, as `fpaste` prints them)"
        )));
    }
    Ok(PasteRef {
        server,
        id: path.to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(server: Option<&str>, id: &str, key: Option<&str>) -> PasteRef {
        PasteRef {
            server: server.map(Into::into),
            id: id.into(),
            key: key.map(Into::into),
        }
    }

    #[test]
    fn ids_urls_and_fragments_parse() {
        assert_eq!(
            parse("6be3e94d0212c79b").ok(),
            Some(r(None, "6be3e94d0212c79b", None))
        );
        assert_eq!(parse("abc#KEY").ok(), Some(r(None, "abc", Some("KEY"))));
        assert_eq!(parse("abc#").ok(), Some(r(None, "abc", None)));
        assert_eq!(
            parse("https://paste.example/p/abc#K-_").ok(),
            Some(r(Some("https://paste.example/p"), "abc", Some("K-_")))
        );
        assert_eq!(
            parse("http://127.0.0.1:8080/abc/raw").ok(),
            Some(r(Some("http://127.0.0.1:8080"), "abc", None))
        );
        assert_eq!(
            parse("http://127.0.0.1:8080/abc/").ok(),
            Some(r(Some("http://127.0.0.1:8080"), "abc", None))
        );
    }

    #[test]
    fn paths_that_would_reach_other_routes_are_refused() {
        for bad in [
            "",
            "../pki",
            "a/b",
            "abc?x=1",
            "http://host",
            "http://host/",
            "a b",
            "%2e%2e",
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad}");
        }
    }
}

//! The token a client subcommand or `--connect` sends, and its origin, so that the message
//! of a 401 names the token the server rejected and what to set instead.
//!
//! In order: `--token` / `TORPOR_TOKEN`; `--read-token` / `TORPOR_READ_TOKEN`, for read-only
//! use; and, for a server on this machine, the full token it generated in
//! `DATA_DIR/api-token` (`--data-dir`, `TORPOR_DATA_DIR` or the default data directory).

use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::api::auth::TOKEN_FILE;

/// The origin of a client's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or `TORPOR_TOKEN`.
    Given,
    /// `--read-token` or `TORPOR_READ_TOKEN`.
    GivenReadOnly,
    /// The token file of a server on this machine.
    File(PathBuf),
    /// No token was given and the token file could not be read, for `reason` ("does not
    /// exist", or the error).
    FileMissing { path: PathBuf, reason: String },
    /// No token was given, and the server is not on this machine, so no file was tried.
    None,
}

/// The token to send and its source.
#[derive(Debug, Clone)]
pub struct ClientToken {
    pub token: Option<String>,
    pub source: TokenSource,
}

impl ClientToken {
    /// Picks the token for a client of the server at `base`.
    pub fn resolve(
        base: &str,
        token: Option<&str>,
        read_token: Option<&str>,
        data_dir: Option<&Path>,
    ) -> ClientToken {
        if let Some(token) = token {
            return ClientToken {
                token: Some(token.to_owned()),
                source: TokenSource::Given,
            };
        }
        if let Some(token) = read_token {
            return ClientToken {
                token: Some(token.to_owned()),
                source: TokenSource::GivenReadOnly,
            };
        }
        let none = ClientToken {
            token: None,
            source: TokenSource::None,
        };
        if !is_local(base) {
            return none;
        }
        let Some(dir) = data_dir
            .map(Path::to_path_buf)
            .or_else(|| dirs::data_dir().map(|d| d.join("torpor")))
        else {
            return none;
        };
        let path = dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => ClientToken {
                token: Some(text.trim().to_owned()),
                source: TokenSource::File(path),
            },
            Err(err) => {
                let reason = match err.kind() {
                    std::io::ErrorKind::NotFound => "does not exist".to_owned(),
                    _ => format!("cannot be read ({err})"),
                };
                ClientToken {
                    token: None,
                    source: TokenSource::FileMissing { path, reason },
                }
            }
        }
    }

    /// Says which token the client sent and what to set when the server rejects it.
    pub fn unauthorized_hint(&self) -> String {
        const FIX: &str = "pass --data-dir (or set TORPOR_DATA_DIR) to the server's data \
                           directory, or set TORPOR_TOKEN";
        match &self.source {
            TokenSource::Given => "this client sent the token from --token or TORPOR_TOKEN; \
                                   set it to the server's token"
                .into(),
            TokenSource::GivenReadOnly => "this client sent the token from --read-token or \
                                           TORPOR_READ_TOKEN; set it to the server's read-only token"
                .into(),
            TokenSource::File(path) => format!(
                "this client sent the token in {}, which belongs to another server; {FIX}",
                path.display()
            ),
            TokenSource::FileMissing { path, reason } => format!(
                "this client sent none, because --token and TORPOR_TOKEN are unset and {} {reason}; {FIX}",
                path.display()
            ),
            TokenSource::None => "this client sent none; pass --token or set TORPOR_TOKEN \
                                  (TORPOR_READ_TOKEN for read-only use)"
                .into(),
        }
    }

    /// Builds an API client that sends this token.
    pub fn client(&self, base: &str) -> anyhow::Result<crate::api::Client> {
        Ok(crate::api::Client::new(base, self.token.as_deref())?
            .with_unauthorized_hint(self.unauthorized_hint()))
    }
}

/// Returns whether the server at `base` is on this machine, where its token file can be read.
fn is_local(base: &str) -> bool {
    let Ok(url) = Url::parse(base) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_token_wins_over_read_token() {
        let token = ClientToken::resolve("http://127.0.0.1:1", Some("full"), Some("read"), None);
        assert_eq!(token.token.as_deref(), Some("full"));
        assert_eq!(token.source, TokenSource::Given);
        let token = ClientToken::resolve("http://127.0.0.1:1", None, Some("read"), None);
        assert_eq!(token.token.as_deref(), Some("read"));
        assert_eq!(token.source, TokenSource::GivenReadOnly);
    }

    #[test]
    fn local_server_token_comes_from_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ClientToken::resolve("http://localhost:1", None, None, Some(dir.path()));
        assert_eq!(missing.token, None);
        let hint = missing.unauthorized_hint();
        assert!(
            hint.contains(&dir.path().join(TOKEN_FILE).display().to_string()),
            "{hint}"
        );
        assert!(hint.contains("--data-dir"), "{hint}");

        std::fs::write(dir.path().join(TOKEN_FILE), "from-the-file\n").unwrap();
        let found = ClientToken::resolve("http://[::1]:1", None, None, Some(dir.path()));
        assert_eq!(found.token.as_deref(), Some("from-the-file"));
        assert_eq!(found.source, TokenSource::File(dir.path().join(TOKEN_FILE)));
    }

    #[test]
    fn remote_server_reads_no_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "from-the-file\n").unwrap();
        let token = ClientToken::resolve("http://192.0.2.1:1", None, None, Some(dir.path()));
        assert_eq!(token.token, None);
        assert_eq!(token.source, TokenSource::None);
        assert!(token.unauthorized_hint().contains("TORPOR_TOKEN"));
    }
}

//! The subcommands that talk to a running agent: HTTP requests to its control API with
//! `reqwest`, answers printed as JSON (or a table for `members`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ApiArgs, Cmd, Format, KeysCmd, PartitionCmd, runtime};

/// Runs a subcommand against a running agent's API.
pub(super) fn client(cmd: Cmd) -> Result<ExitCode, String> {
    runtime()?.block_on(async move {
        match cmd {
            Cmd::Agent(_) | Cmd::Keygen => unreachable!("handled by main"),
            Cmd::Members { api, alive, format } => {
                let path = if alive {
                    "/members?alive=true"
                } else {
                    "/members"
                };
                let v = call(&api, reqwest::Method::GET, path, None).await?;
                match format {
                    Format::Json => println!("{v}"),
                    Format::Table => print_members(&v),
                }
            }
            Cmd::Join { api, seeds } => {
                let v = call(
                    &api,
                    reqwest::Method::POST,
                    "/join",
                    Some(json!({ "seeds": seeds })),
                );
                println!("{}", v.await?);
            }
            Cmd::Leave { api } => println!(
                "{}",
                call(&api, reqwest::Method::POST, "/leave", None).await?
            ),
            Cmd::ForceLeave { api, name } => {
                let body = json!({ "name": name });
                println!(
                    "{}",
                    call(&api, reqwest::Method::POST, "/force-leave", Some(body)).await?
                );
            }
            Cmd::Keys { op } => {
                let (api, path, key) = match op {
                    KeysCmd::Install { api, key } => (api, "/keys/install", Some(key)),
                    KeysCmd::Use { api, key } => (api, "/keys/use", Some(key)),
                    KeysCmd::Remove { api, key } => (api, "/keys/remove", Some(key)),
                    KeysCmd::List { api } => (api, "/keys", None),
                };
                let v = match key {
                    Some(key) => {
                        call(
                            &api,
                            reqwest::Method::POST,
                            path,
                            Some(json!({ "key": key })),
                        )
                        .await?
                    }
                    None => call(&api, reqwest::Method::GET, path, None).await?,
                };
                println!("{v}");
            }
            Cmd::Publish {
                api,
                ty,
                key,
                value,
            } => {
                let body = json!({ "type": ty, "key": key, "value": value });
                println!(
                    "{}",
                    call(&api, reqwest::Method::POST, "/publish", Some(body)).await?
                );
            }
            Cmd::Get { api, ty, key } => {
                let path = match key {
                    Some(k) => format!("/state/{}/{}", escape(&ty), escape(&k)),
                    None => format!("/state/{}", escape(&ty)),
                };
                println!("{}", call(&api, reqwest::Method::GET, &path, None).await?);
            }
            Cmd::Stats { api } => println!(
                "{}",
                call(&api, reqwest::Method::GET, "/stats", None).await?
            ),
            Cmd::Reload { api } => println!(
                "{}",
                call(&api, reqwest::Method::POST, "/reload", None).await?
            ),
            Cmd::Monitor { api } => monitor(&api).await?,
            Cmd::Send {
                api,
                channel,
                reliable,
                name,
                payload,
            } => {
                let body = json!({ "to": name, "channel": channel, "payload": payload,
                    "reliable": reliable });
                println!(
                    "{}",
                    call(&api, reqwest::Method::POST, "/send", Some(body)).await?
                );
            }
            Cmd::Event { api, name, payload } => {
                let body = json!({ "name": name, "payload": payload });
                println!(
                    "{}",
                    call(&api, reqwest::Method::POST, "/event", Some(body)).await?
                );
            }
            Cmd::Query {
                api,
                names,
                meta,
                timeout_ms,
                name,
                payload,
            } => {
                let body = json!({ "name": name, "payload": payload, "names": names,
                    "meta": meta, "timeout_ms": timeout_ms });
                println!(
                    "{}",
                    call(&api, reqwest::Method::POST, "/query", Some(body)).await?
                );
            }
            // Live partitions (issue 14).
            Cmd::Partition { op } => println!("{}", partition(op).await?),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Percent-encodes a path segment.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

fn request(
    api: &ApiArgs,
    http: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let mut r = http.request(method, format!("http://{}{path}", api.http));
    if let Some(t) = &api.http_token {
        r = r.bearer_auth(t);
    }
    r
}

/// One request; the JSON answer, or an error naming the address and the agent's reason.
async fn call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let http = http_client(Some(Duration::from_secs(30)))?;
    let mut r = request(api, &http, method, path);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let at = format!("--http {}", api.http);
    let resp = r.send().await.map_err(|e| format!("{at}: {}", chain(&e)))?;
    let code = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{at}: {}", chain(&e)))?;
    if !code.is_success() {
        let why = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(format!("{at}{path}: HTTP {code}: {why}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{at}{path}: not JSON: {e}"))
}

fn print_members(v: &Value) {
    let rows: Vec<[String; 4]> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let s = |k: &str| m[k].as_str().map_or_else(|| m[k].to_string(), String::from);
                    [s("name"), s("addr"), s("state"), s("incarnation")]
                })
                .collect()
        })
        .unwrap_or_default();
    let head = ["NAME", "ADDRESS", "STATE", "INCARNATION"].map(String::from);
    let mut width = [0usize; 4];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = std::io::stdout().lock();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

/// Copies `GET /events` to stdout, line by line, until the agent stops or the stream ends.
async fn monitor(api: &ApiArgs) -> Result<(), String> {
    let http = http_client(None)?;
    let at = format!("--http {}", api.http);
    let mut resp = request(api, &http, reqwest::Method::GET, "/events")
        .send()
        .await
        .map_err(|e| format!("{at}: {}", chain(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("{at}/events: HTTP {}", resp.status()));
    }
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{at}: {}", chain(&e)))?
    {
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

/// An error with its sources (`error sending request: ... : Connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// `swim-agent partition inject|resolve|list`.
async fn partition(op: PartitionCmd) -> Result<Value, String> {
    match op {
        PartitionCmd::Inject {
            api,
            rules,
            members,
        } => {
            let body = match rules {
                Some(text) => {
                    let rules: Value = serde_json::from_str(&text)
                        .map_err(|e| format!("--rules: not JSON: {e}"))?;
                    json!({ "rules": rules })
                }
                None => json!({ "members": members }),
            };
            call(&api, reqwest::Method::POST, "/partitions", Some(body)).await
        }
        PartitionCmd::Resolve { api, id } => {
            let path = format!("/partitions/{id}");
            call(&api, reqwest::Method::DELETE, &path, None).await
        }
        PartitionCmd::List { api } => call(&api, reqwest::Method::GET, "/partitions", None).await,
    }
}

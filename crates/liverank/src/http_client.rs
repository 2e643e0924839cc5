//! A small blocking HTTP/1.1 client over one keep-alive loopback connection: how the main
//! job and the A/B harness call the serving API as an outside caller would (a real socket,
//! real framing), without a connection per request (thousands of calls would otherwise
//! leave thousands of sockets in TIME_WAIT).

use anyhow::{Context, bail, ensure};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// One connection to a server.
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// `POST path` with a JSON body; the response body as JSON (a non-200 status is an
    /// error carrying the server's reason).
    pub fn post_json(&mut self, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let (status, payload) = self.read_response()?;
        let text = String::from_utf8_lossy(&payload);
        ensure!(status == 200, "{path}: HTTP {status}: {text}");
        serde_json::from_slice(&payload).with_context(|| format!("{path}: response is not JSON"))
    }

    /// Reads one response: status code and body (Content-Length framing).
    fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("malformed status line {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed inside the response head");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let length = length.context("response without Content-Length")?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

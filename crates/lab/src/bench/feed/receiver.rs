//! The application's webhook receiver: a minimal HTTP/1.1 server on
//! 127.0.0.1 that answers every request 204 and hands each one, stamped
//! with the instant its body was complete, to the bench. Keep-alive and
//! `content-length` bodies only (what calsync's sender sends).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::error::LabError;

/// The largest request head or body taken; a delivery is a few KB.
const MAX_REQUEST: usize = 4 << 20;

/// One request received.
pub(super) struct Delivery {
    pub at: Instant,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (empty when absent).
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

pub(super) struct Receiver {
    pub url: String,
    pub deliveries: UnboundedReceiver<Delivery>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Self, LabError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("webhook receiver: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let (sender, deliveries) = unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, sender).await;
                });
            }
        });
        Ok(Self {
            url: format!("http://{address}/hooks/calendar"),
            deliveries,
            task,
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests on one connection until it closes.
async fn serve(mut stream: TcpStream, sender: UnboundedSender<Delivery>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buffer: Vec<u8> = Vec::with_capacity(16 << 10);
    loop {
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end;
            }
            if buffer.len() > MAX_REQUEST || read_more(&mut stream, &mut buffer).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_owned())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let body_start = head_end + 4;
        if length > MAX_REQUEST {
            return Ok(());
        }
        while buffer.len() < body_start + length {
            if read_more(&mut stream, &mut buffer).await? == 0 {
                return Ok(());
            }
        }
        let at = Instant::now();
        let body = buffer[body_start..body_start + length].to_vec();
        buffer.drain(..body_start + length);
        let close = header("connection").eq_ignore_ascii_case("close");
        let _ = sender.send(Delivery {
            at,
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        });
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await?;
        if close {
            return Ok(());
        }
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 16 << 10];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

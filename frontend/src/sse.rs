//! A parser for server-sent events (`text/event-stream`), fed the bytes of a `fetch()` body as
//! they arrive. Pure, so it is tested on the host; `live.rs` uses it for
//! `GET /tenants/{t}/live` (an `EventSource` cannot send the `Authorization` header).

/// One dispatched event: its `id:`, `event:` and `data:` lines (data lines joined with `\n`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Bytes in, frames out. Incomplete frames (and split UTF-8) wait for the next chunk.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Adds a chunk; returns every frame it completes. Comments (`: keep-alive`) and frames
    /// without any field are dropped.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, sep)) = frame_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
            if let Some(f) = parse_frame(&String::from_utf8_lossy(&raw)) {
                out.push(f);
            }
        }
        out
    }
}

/// Where the first blank line is: (start of the separator, its length).
fn frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    for i in 0..buf.len() {
        for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buf[i..].starts_with(sep) {
                return Some((i, sep.len()));
            }
        }
    }
    None
}

fn parse_frame(text: &str) -> Option<Frame> {
    let mut f = Frame::default();
    let mut data: Vec<&str> = Vec::new();
    let mut any = false;
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match name {
            "id" => f.id = Some(value.to_owned()),
            "event" => f.event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => continue,
        }
        any = true;
    }
    f.data = data.join("\n");
    any.then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_chunks_come_out_whole() {
        let mut p = SseParser::new();
        assert!(p.push(b": keep-alive\n\nid: 12\nevent: Progre").is_empty());
        let frames = p.push("ssReported\ndata: {\"a\":\"社区\"}\n\nid: 13\n".as_bytes());
        assert_eq!(
            frames,
            [Frame {
                id: Some("12".into()), event: Some("ProgressReported".into()), data: "{\"a\":\"社区\"}".into()
            }]
        );
        let frames = p.push(b"data: x\r\ndata: y\r\n\r\n");
        assert_eq!(frames, [Frame { id: Some("13".into()), event: None, data: "x\ny".into() }]);
    }

    #[test]
    fn split_utf8_waits_for_the_rest() {
        let bytes = "data: 东风\n\n".as_bytes();
        let mut p = SseParser::new();
        assert!(p.push(&bytes[..8]).is_empty());
        assert_eq!(p.push(&bytes[8..])[0].data, "东风");
    }

    #[test]
    fn comments_alone_are_not_events() {
        let mut p = SseParser::new();
        assert!(p.push(b": keep-alive\n\n:\n\n").is_empty());
        assert_eq!(p.push(b"event: shutdown\ndata:\n\n")[0].event.as_deref(), Some("shutdown"));
    }
}

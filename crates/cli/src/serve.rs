//! `sigmatag serve`: a sidecar for any Vector (or anything that speaks NDJSON).
//!
//! - `http` (default): `POST` NDJSON batches (Vector `http` sink); each batch is tagged and
//!   forwarded as one `POST` to `--downstream http://host:port/path` (Vector `http_server`
//!   source). The sink gets `200` only after downstream answered 2xx, `503` otherwise, so
//!   Vector retries: at-least-once end to end.
//! - `tcp`: newline-delimited in, newline-delimited out to `--downstream host:port` (Vector
//!   `socket` sink and source). One downstream connection per inbound connection, so order
//!   is kept per connection. Best effort: bytes in flight die with a connection.
//! - `stdout`: listen like `tcp`, write to stdout (Vector `exec` source, streaming mode).
//!
//! Back-pressure: everything streams through fixed buffers (a request body is bounded by
//! `--max-body`, a line by the same limit); blocking writes stall reads, so a slow
//! downstream slows the sender. At most `--max-connections` connections are served; more
//! wait in the listen backlog. In `tcp` mode a connection is accepted only after its
//! downstream connection is up, so a dead downstream stops intake.
//!
//! The HTTP/1.1 server and client are written on `std::net`: keep-alive, `Content-Length`
//! and chunked bodies, `Expect: 100-continue`; plain `http://` only (run it on loopback or a
//! private network beside Vector).

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sigmatag::{LineOutcome, TagConfig, Tagger};

const USAGE: &str = "\
sigmatag serve: tag NDJSON in a sidecar (Vector http/socket/exec routes, docs/vector.md)

USAGE:
    sigmatag serve [--mode http|tcp|stdout] [--listen ADDR] [--downstream URL|ADDR]
                   [--rules PATH]... [--mapping NAME|FILE] [--tag-field NAME]
                   [--placeholders FILE] [--drop-unmatched]
                   [--max-connections N] [--max-body BYTES] [--timeout SECS]

--mode             http (default): POST NDJSON, forwarded to --downstream URL, answered 200
                   only after downstream accepted (503 otherwise);
                   tcp: lines in, lines out to --downstream host:port;
                   stdout: lines in over TCP, lines out on stdout
--listen           default 127.0.0.1:9000 (http) or 127.0.0.1:9001 (tcp, stdout)
--max-connections  connections served at once (default 8)
--max-body         largest request body or line in bytes (default 16777216)
--timeout          downstream and idle timeout in seconds (default 30)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Tcp,
    Stdout,
}

struct ServeOpts {
    mode: Mode,
    listen: Option<String>,
    downstream: Option<String>,
    config: TagConfig,
    max_connections: usize,
    max_body: usize,
    timeout: Duration,
}

fn parse(args: &[String]) -> Result<ServeOpts, String> {
    let mut o = ServeOpts {
        mode: Mode::Http,
        listen: None,
        downstream: None,
        config: TagConfig::default(),
        max_connections: 8,
        max_body: 16 << 20,
        timeout: Duration::from_secs(30),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut value = || -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let number = |v: String| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{a}: '{v}' is not a number"))
        };
        match a {
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "http" => Mode::Http,
                    "tcp" => Mode::Tcp,
                    "stdout" => Mode::Stdout,
                    m => return Err(format!("--mode: unknown mode '{m}' (http, tcp, stdout)")),
                }
            }
            "--listen" => o.listen = Some(value()?),
            "--downstream" => o.downstream = Some(value()?),
            "--rules" | "-r" => o.config.rules.push(PathBuf::from(value()?)),
            "--mapping" | "-m" => o.config.mapping = Some(value()?),
            "--tag-field" => o.config.tag_field = value()?,
            "--placeholders" => o.config.placeholders = Some(PathBuf::from(value()?)),
            "--drop-unmatched" => o.config.drop_unmatched = true,
            "--max-connections" => o.max_connections = number(value()?)?.max(1) as usize,
            "--max-body" => o.max_body = number(value()?)?.max(1024) as usize,
            "--timeout" => o.timeout = Duration::from_secs(number(value()?)?.max(1)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("serve: unknown argument '{other}'")),
        }
        i += 1;
    }
    if o.mode != Mode::Stdout && o.downstream.is_none() {
        return Err("serve: --downstream is required in http and tcp modes".into());
    }
    Ok(o)
}

/// Entry point of `sigmatag serve`; returns the process exit code.
pub fn main(args: &[String]) -> u8 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sigmatag: {e}");
            }
            eprint!("{USAGE}");
            return 2;
        }
    };
    match run(o) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sigmatag serve: {e}");
            1
        }
    }
}

fn run(o: ServeOpts) -> Result<(), String> {
    let tagger = Arc::new(o.config.build()?);
    for e in &tagger.rejected {
        eprintln!("rejected: {e}");
    }
    let default_listen = if o.mode == Mode::Http {
        "127.0.0.1:9000"
    } else {
        "127.0.0.1:9001"
    };
    let listen = o.listen.as_deref().unwrap_or(default_listen);
    let listener = TcpListener::bind(listen).map_err(|e| format!("listen {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mode = match o.mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
        Mode::Stdout => "stdout",
    };
    // First stderr line: tests and scripts read the bound address from it.
    eprintln!(
        "sigmatag serve: listening on {local} ({mode}); {} rules loaded, {} rejected",
        tagger.set.len(),
        tagger.rejected.len()
    );
    let shared = Arc::new(Shared {
        tagger,
        slots: Slots::new(o.max_connections),
        max_body: o.max_body,
        timeout: o.timeout,
        stdout: Mutex::new(()),
    });
    match o.mode {
        Mode::Http => {
            let target = HttpTarget::parse(o.downstream.as_deref().unwrap_or_default())?;
            let target = Arc::new(target);
            accept_loop(&listener, &shared, move |stream, shared| {
                http_connection(stream, shared, &target)
            })
        }
        Mode::Tcp => {
            let addr = o.downstream.unwrap_or_default();
            tcp_accept_loop(&listener, &shared, &addr)
        }
        Mode::Stdout => accept_loop(&listener, &shared, |stream, shared| {
            let out = StdoutSink { shared };
            let _ = pipe_lines(stream, out, shared);
        }),
    }
}

struct Shared {
    tagger: Arc<Tagger>,
    slots: Slots,
    max_body: usize,
    timeout: Duration,
    stdout: Mutex<()>,
}

/// A counting semaphore for connections.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }
    fn acquire(&self) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
    }
    fn release(&self) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.cv.notify_one();
    }
}

/// Gives a slot back when a connection thread ends, however it ends.
struct SlotGuard(Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.slots.release();
    }
}

static CONNECTION_ERRORS: AtomicU64 = AtomicU64::new(0);

fn accept_loop<F>(listener: &TcpListener, shared: &Arc<Shared>, handle: F) -> Result<(), String>
where
    F: Fn(TcpStream, &Arc<Shared>) + Send + Sync + Clone + 'static,
{
    loop {
        shared.slots.acquire();
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                shared.slots.release();
                eprintln!("sigmatag serve: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let shared = Arc::clone(shared);
        let handle = handle.clone();
        std::thread::spawn(move || {
            let guard = SlotGuard(Arc::clone(&shared));
            let _ = stream.set_nodelay(true);
            handle(stream, &shared);
            drop(guard);
        });
    }
}

fn tcp_accept_loop(listener: &TcpListener, shared: &Arc<Shared>, addr: &str) -> Result<(), String> {
    let mut backoff = Duration::from_millis(50);
    loop {
        shared.slots.acquire();
        // Connect downstream first: while downstream is gone, nothing new is accepted.
        let down = loop {
            match connect(addr, shared.timeout) {
                Ok(s) => {
                    backoff = Duration::from_millis(50);
                    break s;
                }
                Err(e) => {
                    if CONNECTION_ERRORS.fetch_add(1, Ordering::Relaxed) % 20 == 0 {
                        eprintln!("sigmatag serve: downstream {addr}: {e}; retrying");
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        };
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                shared.slots.release();
                eprintln!("sigmatag serve: accept: {e}");
                continue;
            }
        };
        let shared = Arc::clone(shared);
        std::thread::spawn(move || {
            let guard = SlotGuard(Arc::clone(&shared));
            let _ = stream.set_nodelay(true);
            let out = BufWriter::with_capacity(1 << 16, down);
            if let Err(e) = pipe_lines(stream, out, &shared) {
                eprintln!("sigmatag serve: connection closed: {e}");
            }
            drop(guard);
        });
    }
}

fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_write_timeout(Some(timeout))?;
                s.set_read_timeout(Some(timeout))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Where tagged lines go in the streaming modes.
trait LineSink {
    fn write_lines(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn flush_lines(&mut self) -> io::Result<()>;
}

impl LineSink for BufWriter<TcpStream> {
    fn write_lines(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
    fn flush_lines(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// Stdout shared by all connections: whole lines at a time, never interleaved mid-line.
struct StdoutSink<'a> {
    shared: &'a Shared,
}

impl LineSink for StdoutSink<'_> {
    fn write_lines(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _lock = self.shared.stdout.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }
    fn flush_lines(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams lines from `input` to `out`, tagged. Output is batched up to 64 KiB and flushed
/// whenever the input has nothing more buffered, so a trickle is not delayed.
fn pipe_lines(input: TcpStream, mut out: impl LineSink, shared: &Shared) -> io::Result<()> {
    let tagger = &shared.tagger;
    let max = shared.max_body;
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut scratch = tagger.scratch();
    let mut line = Vec::with_capacity(1 << 16);
    let mut batch = Vec::with_capacity(1 << 17);
    loop {
        line.clear();
        let n = (&mut reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            tagger.tag_line(&mut scratch, &line, &mut batch);
        } else if line.len() > max {
            // Longer than any record we tag: pass it through unchanged, streaming.
            out.write_lines(&batch)?;
            batch.clear();
            out.write_lines(&line)?;
            copy_rest_of_line(&mut reader, &mut out)?;
        } else {
            // The last line, without a newline: tag it and end it with one.
            tagger.tag_line(&mut scratch, &line, &mut batch);
        }
        if batch.len() >= 1 << 16 || reader.buffer().is_empty() {
            out.write_lines(&batch)?;
            batch.clear();
            if reader.buffer().is_empty() {
                out.flush_lines()?;
            }
        }
    }
    out.write_lines(&batch)?;
    out.flush_lines()
}

fn copy_rest_of_line(reader: &mut BufReader<TcpStream>, out: &mut impl LineSink) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return out.write_lines(b"\n");
        }
        match memchr_newline(buf) {
            Some(i) => {
                out.write_lines(&buf[..=i])?;
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                out.write_lines(buf)?;
                reader.consume(n);
            }
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

// ---------------------------------------------------------------- HTTP

/// `http://host:port/path` of the downstream `http_server` source.
struct HttpTarget {
    authority: String,
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<HttpTarget, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--downstream '{url}': only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("--downstream '{url}': no host"));
        }
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpTarget {
            authority,
            path: path.to_string(),
        })
    }
}

struct Request {
    method: String,
    path: String,
    close: bool,
    body: Vec<u8>,
}

enum ReadOutcome {
    Request(Request),
    Closed,
    Reject(u16, &'static str),
}

fn http_connection(stream: TcpStream, shared: &Arc<Shared>, target: &HttpTarget) {
    let _ = stream.set_read_timeout(Some(shared.timeout * 2));
    let _ = stream.set_write_timeout(Some(shared.timeout));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = BufWriter::new(write_half);
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut scratch = shared.tagger.scratch();
    let mut downstream: Option<BufReader<TcpStream>> = None;
    let mut out = Vec::new();
    loop {
        let req = match read_request(&mut reader, &mut writer, shared.max_body) {
            Ok(ReadOutcome::Request(r)) => r,
            Ok(ReadOutcome::Closed) | Err(_) => return,
            Ok(ReadOutcome::Reject(code, why)) => {
                let _ = respond(&mut writer, code, why, true);
                return;
            }
        };
        let (code, text) = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/health") => (200, "ok"),
            ("POST", _) | ("PUT", _) => {
                out.clear();
                tag_body(&shared.tagger, &mut scratch, &req.body, &mut out);
                if out.is_empty() {
                    (200, "")
                } else {
                    match forward(&mut downstream, target, &out, shared.timeout) {
                        Ok(()) => (200, ""),
                        Err(e) => {
                            if CONNECTION_ERRORS.fetch_add(1, Ordering::Relaxed) % 20 == 0 {
                                eprintln!("sigmatag serve: downstream: {e}");
                            }
                            (503, "downstream did not accept the batch")
                        }
                    }
                }
            }
            _ => (405, "POST NDJSON here"),
        };
        // Keep memory flat across big and small batches.
        if out.capacity() > 4 << 20 {
            out = Vec::new();
        }
        if respond(&mut writer, code, text, req.close).is_err() || req.close {
            return;
        }
    }
}

fn tag_body(
    tagger: &Tagger,
    scratch: &mut sigmatag_matcher::Scratch,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    out.reserve(body.len() + body.len() / 8);
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.is_empty() {
        return;
    }
    for line in body.split(|b| *b == b'\n') {
        let _: LineOutcome = tagger.tag_line(scratch, line, out);
    }
}

fn respond(w: &mut impl Write, code: u16, text: &str, close: bool) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        _ => "Service Unavailable",
    };
    write!(
        w,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}{}\r\n{text}",
        text.len(),
        if code == 503 { "Retry-After: 1\r\n" } else { "" },
        if close { "Connection: close\r\n" } else { "" },
    )?;
    w.flush()
}

/// Reads the head (bounded) and returns the lowercase-named headers we act on.
struct Head {
    first: String,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    expect_continue: bool,
    encoded: bool,
}

fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first = String::new();
    let mut total = 0usize;
    // Skip stray empty lines between requests.
    loop {
        first.clear();
        let n = r.by_ref().take(8192).read_line(&mut first)?;
        if n == 0 {
            return Ok(None);
        }
        if !first.trim().is_empty() {
            break;
        }
    }
    let mut head = Head {
        first: first.trim_end().to_string(),
        content_length: None,
        chunked: false,
        close: first.contains("HTTP/1.0"),
        expect_continue: false,
        encoded: false,
    };
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.by_ref().take(8192).read_line(&mut line)?;
        total += n;
        if n == 0 || total > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad head"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some(head));
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => head.content_length = value.parse().ok(),
            "transfer-encoding" => head.chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    head.close = true;
                } else if v.contains("keep-alive") {
                    head.close = false;
                }
            }
            "expect" => head.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "content-encoding" => head.encoded = !value.eq_ignore_ascii_case("identity"),
            _ => {}
        }
    }
}

fn read_request(
    r: &mut BufReader<TcpStream>,
    w: &mut impl Write,
    max_body: usize,
) -> io::Result<ReadOutcome> {
    let Some(head) = read_head(r)? else {
        return Ok(ReadOutcome::Closed);
    };
    let mut parts = head.first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    if head.encoded {
        return Ok(ReadOutcome::Reject(
            415,
            "compressed bodies are not supported: set compression = none",
        ));
    }
    if head.content_length.is_some_and(|n| n > max_body) {
        return Ok(ReadOutcome::Reject(413, "body larger than --max-body"));
    }
    if head.expect_continue {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        w.flush()?;
    }
    let mut body = Vec::new();
    if head.chunked {
        if !read_chunked(r, &mut body, max_body)? {
            return Ok(ReadOutcome::Reject(413, "body larger than --max-body"));
        }
    } else if let Some(n) = head.content_length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if method == "POST" || method == "PUT" {
        return Ok(ReadOutcome::Reject(
            411,
            "Content-Length or chunked body required",
        ));
    }
    Ok(ReadOutcome::Request(Request {
        method,
        path,
        close: head.close,
        body,
    }))
}

/// Decodes a chunked body; `false` when it exceeds `max`.
fn read_chunked(r: &mut impl BufRead, body: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunk");
    let mut line = String::new();
    loop {
        line.clear();
        r.by_ref().take(1024).read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        if size == 0 {
            // Trailers until the empty line.
            loop {
                line.clear();
                if r.by_ref().take(8192).read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(true);
                }
            }
        }
        if body.len() + size > max {
            return Ok(false);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.by_ref().take(8).read_line(&mut line)?;
    }
}

/// POSTs one tagged batch downstream on a kept-alive connection; Ok only for a 2xx answer.
fn forward(
    conn: &mut Option<BufReader<TcpStream>>,
    target: &HttpTarget,
    body: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    // A kept-alive connection may have been closed by the peer meanwhile: one fresh retry.
    let reused = conn.is_some();
    match forward_once(conn, target, body, timeout) {
        Err(e) if reused && e.kind() != io::ErrorKind::Other => {
            *conn = None;
            forward_once(conn, target, body, timeout)
        }
        r => r,
    }
}

fn forward_once(
    conn: &mut Option<BufReader<TcpStream>>,
    target: &HttpTarget,
    body: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    if conn.is_none() {
        let s = connect(&target.authority, timeout)?;
        *conn = Some(BufReader::with_capacity(1 << 14, s));
    }
    let result = (|| {
        let Some(reader) = conn.as_mut() else {
            return Err(io::Error::other("no connection"));
        };
        {
            let s = reader.get_mut();
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
                target.path,
                target.authority,
                body.len()
            );
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.flush()?;
        }
        let mut status_line = String::new();
        if reader.by_ref().take(8192).read_line(&mut status_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "downstream closed the connection",
            ));
        }
        let code: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        let head = read_head_after_status(reader)?;
        // Drain the response body so the connection can be reused.
        if head.chunked {
            let mut sink = Vec::new();
            read_chunked(reader, &mut sink, 1 << 20)?;
        } else if let Some(n) = head.content_length {
            io::copy(&mut reader.by_ref().take(n as u64), &mut io::sink())?;
        } else {
            io::copy(reader, &mut io::sink())?;
            return status(code, true);
        }
        status(code, head.close)
    })();
    match result {
        Ok(keep) => {
            if !keep {
                *conn = None;
            }
            Ok(())
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

/// Ok(keep-alive) for 2xx; an `Other` error (not retried on a fresh connection) otherwise.
fn status(code: u16, close: bool) -> io::Result<bool> {
    if (200..300).contains(&code) {
        Ok(!close)
    } else {
        Err(io::Error::other(format!("downstream answered {code}")))
    }
}

fn read_head_after_status(r: &mut impl BufRead) -> io::Result<Head> {
    let mut head = Head {
        first: String::new(),
        content_length: None,
        chunked: false,
        close: false,
        expect_continue: false,
        encoded: false,
    };
    let mut line = String::new();
    let mut total = 0;
    loop {
        line.clear();
        let n = r.by_ref().take(8192).read_line(&mut line)?;
        total += n;
        if n == 0 || total > 64 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad response head",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(head);
        }
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => head.content_length = value.parse().ok(),
                "transfer-encoding" => {
                    head.chunked = value.to_ascii_lowercase().contains("chunked")
                }
                "connection" => head.close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
}

//! Connection handling of `Client` against scripted unix-socket servers.
//!
//! These servers are fakes on purpose: keep-alive closes that race a request, half-sent
//! responses and garbage cannot be produced on demand by a real LXD. Requests against the real
//! daemon are tested from Python (tests/test_native_transport.py).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::*;

type Script = Box<dyn FnOnce(UnixStream) + Send>;

struct Server {
    path: PathBuf,
    done: JoinHandle<bool>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serve one script per accepted connection, in order; `done` tells whether any further
/// connection was attempted after the last script.
fn serve(name: &str, scripts: Vec<Script>) -> Server {
    let dir = std::env::temp_dir().join(format!("garm-native-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lxd.socket");
    let listener = UnixListener::bind(&path).expect("bind");
    let done = thread::spawn(move || {
        for script in scripts {
            let (conn, _) = listener.accept().expect("accept");
            script(conn);
        }
        listener.set_nonblocking(true).expect("nonblocking");
        listener.accept().is_ok()
    });
    Server {
        path,
        done,
        _dir: TempDir(dir),
    }
}

/// Read one request head (these tests send no bodies); `None` at end of stream.
fn read_request(conn: &mut UnixStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn respond(conn: &mut UnixStream, body: &str) {
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(reply.as_bytes()).expect("write");
}

fn client(server: &Server) -> Client {
    let path = server.path.to_str().expect("utf-8 path");
    let endpoint = Endpoint::unix(path).expect("endpoint");
    Client::new(endpoint, Duration::from_secs(20)).expect("client")
}

fn get(client: &Client, path: &str) -> Result<Response, Error> {
    client.request("GET", path, None, None)
}

fn body(result: Result<Response, Error>) -> String {
    match result {
        Ok(r) => format!("{} {}", r.status, String::from_utf8_lossy(&r.body)),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn keep_alive_connection_is_reused() {
    let server = serve(
        "reuse",
        vec![Box::new(|mut c| {
            while let Some(head) = read_request(&mut c) {
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                respond(&mut c, &format!("{{\"path\":\"{path}\"}}"));
            }
        })],
    );
    let client = client(&server);
    assert_eq!(body(get(&client, "/1.0")), r#"200 {"path":"/1.0"}"#);
    assert_eq!(
        body(get(&client, "/1.0/a?b=c")),
        r#"200 {"path":"/1.0/a?b=c"}"#
    );
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn request_lost_on_a_closing_idle_connection_is_resent_once() {
    let server = serve(
        "retry",
        vec![
            Box::new(|mut c| {
                read_request(&mut c);
                respond(&mut c, "first");
                // Take the next request, then hang up without a byte of answer.
                read_request(&mut c);
            }),
            Box::new(|mut c| {
                read_request(&mut c);
                respond(&mut c, "second");
            }),
        ],
    );
    let client = client(&server);
    assert_eq!(body(get(&client, "/1.0")), "200 first");
    assert_eq!(body(get(&client, "/1.0")), "200 second");
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn idle_connection_closed_by_the_server_is_replaced() {
    let (closed_tx, closed_rx) = mpsc::channel();
    let server = serve(
        "idle-close",
        vec![
            Box::new(move |mut c| {
                read_request(&mut c);
                respond(&mut c, "first");
                drop(c);
                let _ = closed_tx.send(());
            }),
            Box::new(|mut c| {
                read_request(&mut c);
                respond(&mut c, "second");
            }),
        ],
    );
    let client = client(&server);
    assert_eq!(body(get(&client, "/1.0")), "200 first");
    closed_rx.recv().expect("server closed");
    assert_eq!(body(get(&client, "/1.0")), "200 second");
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn hang_up_on_a_fresh_connection_is_an_error_without_retry() {
    let server = serve(
        "fresh-hangup",
        vec![Box::new(|mut c| {
            read_request(&mut c);
        })],
    );
    let client = client(&server);
    let text = body(get(&client, "/1.0"));
    assert!(
        text.starts_with("error: connection to LXD at "),
        "unexpected: {text}"
    );
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn failure_after_the_response_started_is_not_retried() {
    let server = serve(
        "late",
        vec![Box::new(|mut c| {
            read_request(&mut c);
            respond(&mut c, "first");
            read_request(&mut c);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npartial");
        })],
    );
    let client = client(&server);
    assert_eq!(body(get(&client, "/1.0")), "200 first");
    let text = body(get(&client, "/1.0"));
    assert!(text.starts_with("error: connection to LXD"), "{text}");
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn chunked_body_is_reassembled() {
    let server = serve(
        "chunked",
        vec![Box::new(|mut c| {
            read_request(&mut c);
            let _ = c.write_all(
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
                  4\r\n{\"a\"\r\n6\r\n:\"xyz\"\r\n1\r\n}\r\n0\r\n\r\n",
            );
        })],
    );
    let client = client(&server);
    assert_eq!(body(get(&client, "/1.0")), r#"404 {"a":"xyz"}"#);
}

#[test]
fn body_goes_out_with_length_and_json_type() {
    let (tx, rx) = mpsc::channel();
    let server = serve(
        "post",
        vec![Box::new(move |mut c| {
            let head = read_request(&mut c).unwrap_or_default();
            let mut payload = [0u8; 7];
            let _ = c.read_exact(&mut payload);
            let _ = tx.send((head.to_ascii_lowercase(), payload));
            respond(&mut c, "{}");
        })],
    );
    let client = client(&server);
    let sent = client.request(
        "POST",
        "/1.0/x",
        Some(Bytes::from_static(b"{\"a\":1}")),
        None,
    );
    assert_eq!(body(sent), "200 {}");
    let (head, payload) = rx.recv().expect("request seen");
    assert!(head.starts_with("post /1.0/x http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: lxd\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-length: 7\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(&payload, b"{\"a\":1}");
}

#[test]
fn silence_ends_in_a_timeout_error() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = serve(
        "silent",
        vec![Box::new(move |c| {
            let _ = release_rx.recv();
            drop(c);
        })],
    );
    let client = client(&server);
    let result = client.request("GET", "/1.0", None, Some(Duration::from_millis(100)));
    let _ = release_tx.send(());
    let text = body(result);
    assert!(
        text.starts_with("error: LXD request GET /1.0 to ")
            && text.ends_with("timed out after 0.1s"),
        "{text}"
    );
}

#[test]
fn garbage_reply_is_a_protocol_error() {
    let server = serve(
        "garbage",
        vec![Box::new(|mut c| {
            read_request(&mut c);
            let _ = c.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
        })],
    );
    let client = client(&server);
    let result = get(&client, "/1.0");
    assert!(
        matches!(result, Err(Error::Protocol { .. })),
        "{}",
        body(result)
    );
}

#[test]
fn post_never_goes_on_a_reused_connection() {
    // Each connection answers every request with its own number, so the reply tells which
    // connection carried the request.
    let dir = std::env::temp_dir().join(format!("garm-native-{}-post", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = TempDir(dir.clone());
    let path = dir.join("lxd.socket");
    let listener = UnixListener::bind(&path).expect("bind");
    thread::spawn(move || {
        for (number, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                while let Some(head) = read_request(&mut conn) {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if conn.read_exact(&mut body).is_err() {
                        return;
                    }
                    respond(&mut conn, &number.to_string());
                }
            });
        }
    });
    let endpoint = Endpoint::unix(path.to_str().expect("utf-8 path")).expect("endpoint");
    let client = Client::new(endpoint, Duration::from_secs(20)).expect("client");
    assert_eq!(body(get(&client, "/1.0")), "200 0");
    assert_eq!(body(get(&client, "/1.0")), "200 0");
    let post = client.request(
        "POST",
        "/1.0/instances",
        Some(Bytes::from_static(b"{}")),
        None,
    );
    assert_eq!(body(post), "200 1");
}

#[test]
fn bounded_request_keeps_the_first_bytes_and_drops_the_connection() {
    let server = serve(
        "bounded",
        vec![
            Box::new(|mut c| {
                if read_request(&mut c).is_some() {
                    respond(&mut c, &"x".repeat(100_000));
                }
            }),
            Box::new(|mut c| {
                while read_request(&mut c).is_some() {
                    respond(&mut c, "{}");
                }
            }),
        ],
    );
    let client = client(&server);
    let cut = client.request_bounded("GET", "/big", None, None, Some(10));
    assert_eq!(body(cut), "200 xxxxxxxxxx");
    // The rest of the first body was never read: the next request needs a new connection.
    assert_eq!(body(get(&client, "/1.0")), "200 {}");
    let whole = client.request_bounded("GET", "/1.0", None, None, Some(10));
    assert_eq!(body(whole), "200 {}");
    drop(client);
    assert!(!server.done.join().expect("server"));
}

fn respond_declaring(conn: &mut UnixStream, length: usize) {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
    conn.write_all(head.as_bytes()).expect("write");
}

#[test]
fn body_at_the_cap_is_read_and_a_longer_one_is_refused_unread() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = serve(
        "cap-declared",
        vec![
            Box::new(|mut c| {
                read_request(&mut c);
                respond(&mut c, &"x".repeat(1024));
                // One byte over the cap, declared: the client must not wait for the body.
                read_request(&mut c);
                respond_declaring(&mut c, 1025);
            }),
            Box::new(move |mut c| {
                read_request(&mut c);
                respond(&mut c, "fresh");
                let _ = release_rx.recv();
            }),
        ],
    );
    let client = client(&server).with_max_body(1024);
    assert_eq!(
        body(get(&client, "/1.0")),
        format!("200 {}", "x".repeat(1024))
    );
    let text = body(get(&client, "/1.0/instances?recursion=1"));
    assert!(
        text.starts_with("error: LXD response to GET /1.0/instances from ")
            && text.ends_with(" is larger than 1024 bytes; not read"),
        "{text}"
    );
    // The refused response's connection is not reused: the next request opens a new one.
    assert_eq!(body(get(&client, "/1.0")), "200 fresh");
    let _ = release_tx.send(());
    drop(client);
    assert!(!server.done.join().expect("server"));
}

#[test]
fn endless_chunked_body_stops_being_read_at_the_cap() {
    const CAP: usize = 1 << 20;
    let (sent_tx, sent_rx) = mpsc::channel();
    let server = serve(
        "cap-endless",
        vec![Box::new(move |mut c| {
            read_request(&mut c);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
            let mut sent = 0usize;
            // Until the client hangs up (or far past anything a cap could allow).
            while sent < 64 * CAP && c.write_all(chunk.as_bytes()).is_ok() {
                sent += 0x10000;
            }
            let _ = sent_tx.send(sent);
        })],
    );
    let client = client(&server).with_max_body(CAP);
    let text = body(get(&client, "/1.0/instances"));
    assert!(text.ends_with(" is larger than 1 MiB; not read"), "{text}");
    drop(client);
    let sent = sent_rx.recv().expect("server finished");
    // The client hung up once past the cap: what the server got out is the cap plus what
    // the socket buffers and one read of hyper's hold, nowhere near the 64 MiB it offered.
    assert!(sent < 8 * CAP, "server sent {sent} bytes");
}

#[test]
fn default_cap_is_max_body_bytes() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = serve(
        "cap-default",
        vec![Box::new(move |mut c| {
            read_request(&mut c);
            respond_declaring(&mut c, MAX_BODY_BYTES + 1);
            let _ = release_rx.recv();
        })],
    );
    let client = client(&server);
    let text = body(get(&client, "/1.0/instances"));
    let _ = release_tx.send(());
    let limit = format!(" is larger than {} MiB; not read", MAX_BODY_BYTES >> 20);
    assert!(text.ends_with(&limit), "{text}");
}

fn read_exactly(conn: &mut UnixStream, count: usize) -> Vec<u8> {
    let mut data = vec![0u8; count];
    conn.read_exact(&mut data).expect("read");
    data
}

#[test]
fn sftp_read_asks_for_the_upgrade_and_speaks_sftp_after_101() {
    let (head_tx, head_rx) = mpsc::channel::<String>();
    let server = serve(
        "sftp-upgrade",
        vec![Box::new(move |mut c| {
            let _ = head_tx.send(read_request(&mut c).unwrap_or_default());
            c.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: sftp\r\n\r\n")
                .expect("write");
            // INIT (version 3), answered by VERSION 3.
            assert_eq!(read_exactly(&mut c, 9), [0, 0, 0, 5, 1, 0, 0, 0, 3]);
            c.write_all(&[0, 0, 0, 5, 2, 0, 0, 0, 3]).expect("write");
            // LSTAT of the path (id 1), answered by the attributes of a FIFO.
            let length = read_exactly(&mut c, 4);
            let body = read_exactly(
                &mut c,
                u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize,
            );
            assert_eq!(body[0], 7);
            assert_eq!(&body[9..], b"/var/log/x");
            let mut answer = vec![0, 0, 0, 13, 105, 0, 0, 0, 1, 0, 0, 0, 4];
            answer.extend_from_slice(&0o010644u32.to_be_bytes());
            c.write_all(&answer).expect("write");
            let _ = c.read(&mut [0u8; 1]); // until the client hangs up
        })],
    );
    let tail = client(&server).read_file_tail(
        "/1.0/instances/r1/sftp?project=p",
        "/var/log/x",
        1024,
        None,
        true,
    );
    let head = head_rx.recv().expect("request").to_ascii_lowercase();
    assert!(
        head.starts_with("get /1.0/instances/r1/sftp?project=p http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(head.contains("\r\nupgrade: sftp\r\n"), "{head}");
    let tail = tail.map_err(|e| e.to_string());
    assert_eq!(tail.map(|t| t.kind), Ok(Some(sftp::FileType::Fifo)));
}

#[test]
fn sftp_refused_by_lxd_is_one_line_with_its_error() {
    let server = serve(
        "sftp-refused",
        vec![Box::new(|mut c| {
            read_request(&mut c);
            let body = "{\"type\":\"error\",\"error\":\"Instance not found\\nsecond line\",\"error_code\":404}";
            let reply = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            c.write_all(reply.as_bytes()).expect("write");
        })],
    );
    let result = client(&server).read_file_tail("/1.0/instances/r1/sftp", "/x", 10, None, true);
    let text = result.map(|_| ()).map_err(|e| e.to_string()).unwrap_err();
    assert!(
        text.ends_with("(/1.0/instances/r1/sftp): HTTP 404: Instance not found"),
        "{text}"
    );
}

#[test]
fn sftp_server_that_does_not_answer_times_out() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let server = serve(
        "sftp-silent",
        vec![Box::new(move |mut c| {
            read_request(&mut c);
            c.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: sftp\r\n\r\n")
                .expect("write");
            let _ = release_rx.recv(); // never answers INIT
        })],
    );
    let timeout = Some(Duration::from_millis(300));
    let result = client(&server).read_file_tail("/1.0/instances/r1/sftp", "/x", 10, timeout, true);
    let _ = release_tx.send(());
    let text = result.map(|_| ()).map_err(|e| e.to_string()).unwrap_err();
    assert!(text.ends_with("timed out after 0.3s"), "{text}");
}

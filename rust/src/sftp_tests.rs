use super::*;

fn status(id: u32, code: u32, message: &str) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&code.to_be_bytes());
    put_string(&mut body, message.as_bytes());
    put_string(&mut body, b"en");
    body
}

fn attrs_body(id: u32, size: Option<u64>, mode: Option<u32>) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    let flags = size.map_or(0, |_| ATTR_SIZE) | ATTR_UIDGID | mode.map_or(0, |_| ATTR_PERMISSIONS);
    body.extend_from_slice(&flags.to_be_bytes());
    if let Some(size) = size {
        body.extend_from_slice(&size.to_be_bytes());
    }
    body.extend_from_slice(&[0, 0, 3, 232, 0, 0, 3, 232]); // uid, gid 1000
    if let Some(mode) = mode {
        body.extend_from_slice(&mode.to_be_bytes());
    }
    body
}

#[test]
fn requests_are_encoded_as_sftp_v3_packets() {
    assert_eq!(init(), [0, 0, 0, 5, INIT, 0, 0, 0, 3]);
    assert_eq!(
        lstat(7, "/a"),
        [0, 0, 0, 11, LSTAT, 0, 0, 0, 7, 0, 0, 0, 2, b'/', b'a']
    );
    // Read and write flags, then empty attributes: a swapped-in FIFO opens at once.
    assert_eq!(
        open(1, "/f"),
        [0, 0, 0, 19, OPEN, 0, 0, 0, 1, 0, 0, 0, 2, b'/', b'f', 0, 0, 0, 3, 0, 0, 0, 0]
    );
    assert_eq!(
        fstat(2, b"h"),
        [0, 0, 0, 10, FSTAT, 0, 0, 0, 2, 0, 0, 0, 1, b'h']
    );
    assert_eq!(
        close(3, b"h"),
        [0, 0, 0, 10, CLOSE, 0, 0, 0, 3, 0, 0, 0, 1, b'h']
    );
    let mut expected = vec![0, 0, 0, 22, READ, 0, 0, 0, 4, 0, 0, 0, 1, b'h'];
    expected.extend_from_slice(&0x1_0000_0002u64.to_be_bytes());
    expected.extend_from_slice(&32768u32.to_be_bytes());
    assert_eq!(read(4, b"h", 0x1_0000_0002, 32768), expected);
}

#[test]
fn answers_are_decoded() {
    assert_eq!(
        parse_answer(STATUS, &status(5, 2, "no such file"), 5),
        Ok(Answer::Status {
            code: 2,
            message: "no such file".into()
        })
    );
    // A version 3 server may send the code alone.
    let bare = [0, 0, 0, 5, 0, 0, 0, 1];
    assert_eq!(
        parse_answer(STATUS, &bare, 5),
        Ok(Answer::Status {
            code: 1,
            message: String::new()
        })
    );
    let handle = [0, 0, 0, 1, 0, 0, 0, 2, b'h', b'1'];
    assert_eq!(
        parse_answer(HANDLE, &handle, 1),
        Ok(Answer::Handle(b"h1".to_vec()))
    );
    let data = [0, 0, 0, 9, 0, 0, 0, 3, b'a', b'b', b'c'];
    assert_eq!(
        parse_answer(DATA, &data, 9),
        Ok(Answer::Data(Bytes::from_static(b"abc")))
    );
    assert_eq!(
        parse_answer(ATTRS, &attrs_body(2, Some(1 << 33), Some(0o100644)), 2),
        Ok(Answer::Attrs(Attrs {
            size: Some(1 << 33),
            permissions: Some(0o100644)
        }))
    );
}

#[test]
fn malformed_or_unexpected_answers_are_errors() {
    assert_eq!(
        parse_answer(DATA, &[0, 0, 0, 1, 0, 0, 0, 9, b'x'], 1),
        Err("malformed SFTP answer (too short)".into())
    );
    assert_eq!(
        parse_answer(HANDLE, &[0, 0, 0, 2, 0, 0, 0, 0], 1),
        Err("SFTP answer out of order".into())
    );
    assert_eq!(
        parse_answer(99, &[0, 0, 0, 1], 1),
        Err("unexpected SFTP answer of type 99".into())
    );
    assert_eq!(
        parse_answer(ATTRS, &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0], 1),
        Err("malformed SFTP answer (too short)".into())
    );
}

#[test]
fn file_types_come_from_the_mode() {
    let cases = [
        (0o010600, "a FIFO"),
        (0o020666, "a character device"),
        (0o040755, "a directory"),
        (0o060660, "a block device"),
        (0o100644, "a regular file"),
        (0o120777, "a symbolic link"),
        (0o140755, "a socket"),
        (0o000644, "of an unknown type"),
    ];
    for (mode, text) in cases {
        assert_eq!(FileType::from_mode(mode).describe(), text, "{mode:o}");
    }
    assert_eq!(Attrs::default().kind(), FileType::Unknown);
}

/// A scripted SFTP server for one session: one file whose lstat and fstat give `lstat_mode`
/// and `fstat_mode`, with `content`; it records the type of every request it gets.
async fn serve(
    mut io: tokio::io::DuplexStream,
    lstat_mode: Option<u32>,
    fstat_mode: u32,
    content: Vec<u8>,
) -> Vec<(u8, u64)> {
    let mut seen = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if io.read_exact(&mut header).await.is_err() {
            return seen;
        }
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut body = vec![0u8; length - 1];
        if io.read_exact(&mut body).await.is_err() {
            return seen;
        }
        let kind = header[4];
        let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let (answer, payload) = match kind {
            INIT => {
                seen.push((INIT, 0));
                (VERSION, 3u32.to_be_bytes().to_vec())
            }
            LSTAT => match lstat_mode {
                None => (STATUS, status(id, STATUS_NO_SUCH_FILE, "no such file")),
                Some(mode) => (
                    ATTRS,
                    attrs_body(id, Some(content.len() as u64), Some(mode)),
                ),
            },
            OPEN => {
                let mut out = id.to_be_bytes().to_vec();
                put_string(&mut out, b"h");
                (HANDLE, out)
            }
            FSTAT => (
                ATTRS,
                attrs_body(id, Some(content.len() as u64), Some(fstat_mode)),
            ),
            READ => {
                let mut fields = Fields(&body[4..]);
                let _ = fields.string();
                let offset = fields.u64().unwrap_or(0);
                let want = fields.u32().unwrap_or(0) as usize;
                seen.push((READ, offset));
                let start = (offset as usize).min(content.len());
                let chunk = &content[start..(start + want.min(10)).min(content.len())];
                if chunk.is_empty() {
                    (STATUS, status(id, STATUS_EOF, "EOF"))
                } else {
                    let mut out = id.to_be_bytes().to_vec();
                    put_string(&mut out, chunk);
                    (DATA, out)
                }
            }
            CLOSE => (STATUS, status(id, 0, "")),
            other => (STATUS, status(id, 8, &format!("unsupported {other}"))),
        };
        if kind != INIT && kind != READ {
            seen.push((kind, 0));
        }
        let answer_packet = packet(answer, None, &payload);
        if io.write_all(&answer_packet).await.is_err() {
            return seen;
        }
    }
}

fn session(
    lstat_mode: Option<u32>,
    fstat_mode: u32,
    content: &[u8],
    max: usize,
    lstat_first: bool,
) -> (Result<FileTail, String>, Vec<(u8, u64)>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(serve(server, lstat_mode, fstat_mode, content.to_vec()));
        let result = read_tail(&mut client, "/var/log/x", max, lstat_first).await;
        drop(client);
        (result, server.await.expect("server"))
    })
}

#[test]
fn a_regular_file_is_read_from_its_tail_and_closed() {
    let content: Vec<u8> = (0..95u8).collect();
    let (result, seen) = session(Some(0o100644), 0o100644, &content, 25, true);
    let tail = result.expect("read");
    assert_eq!(tail.kind, Some(FileType::Regular));
    assert_eq!(tail.size, 95);
    assert_eq!(&tail.data[..], &content[70..]);
    // The server returns at most 10 bytes a read: three reads from offset 70, then CLOSE.
    assert_eq!(
        seen,
        [
            (INIT, 0),
            (LSTAT, 0),
            (OPEN, 0),
            (FSTAT, 0),
            (READ, 70),
            (READ, 80),
            (READ, 90),
            (CLOSE, 0)
        ]
    );
}

#[test]
fn a_short_file_is_read_whole_until_end_of_file() {
    let (result, seen) = session(Some(0o100600), 0o100600, b"hello", 1 << 20, true);
    let tail = result.expect("read");
    assert_eq!((&tail.data[..], tail.size), (&b"hello"[..], 5));
    assert_eq!(seen[4..], [(READ, 0), (READ, 5), (CLOSE, 0)]);
}

#[test]
fn what_is_not_a_regular_file_is_never_opened() {
    for mode in [0o010644, 0o120777, 0o020666, 0o040755] {
        let (result, seen) = session(Some(mode), 0o100644, b"x", 100, true);
        let tail = result.expect("read");
        assert_eq!(tail.kind, Some(FileType::from_mode(mode)));
        assert!(tail.data.is_empty());
        assert_eq!(seen, [(INIT, 0), (LSTAT, 0)], "{mode:o}");
    }
}

#[test]
fn a_missing_file_is_none() {
    let (result, seen) = session(None, 0o100644, b"", 100, true);
    assert_eq!(result.map(|t| t.kind), Ok(None));
    assert_eq!(seen, [(INIT, 0), (LSTAT, 0)]);
}

#[test]
fn a_fifo_found_after_the_open_is_closed_unread() {
    let (result, seen) = session(Some(0o100644), 0o010644, b"x", 100, false);
    assert_eq!(result.map(|t| t.kind), Ok(Some(FileType::Fifo)));
    assert_eq!(seen, [(INIT, 0), (OPEN, 0), (FSTAT, 0), (CLOSE, 0)]);
}

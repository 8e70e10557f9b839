//! The end of one file of an instance, read over LXD's SFTP endpoint without opening anything
//! that is not a regular file.
//!
//! LXD's file API (`GET /1.0/instances/<name>/files`) opens whatever the path names before it
//! answers: a FIFO blocks it until a writer comes, a symlink to `/dev/zero` streams forever.
//! Over the SFTP endpoint (`GET /1.0/instances/<name>/sftp`, upgraded; LXD 5.0 and Incus) the
//! path is first looked at with LSTAT, which opens nothing and does not follow links: anything
//! but a regular file is reported by its type and never opened. A regular file is opened
//! read-write, so that a FIFO swapped in between the LSTAT and the OPEN opens at once instead of
//! waiting for a writer; FSTAT of the open handle then turns it away. Nothing is ever written.
//! Only the SFTP v3 requests this needs are spoken (draft-ietf-secsh-filexfer-02).

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const INIT: u8 = 1;
const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const LSTAT: u8 = 7;
const FSTAT: u8 = 8;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const ATTRS: u8 = 105;

const STATUS_EOF: u32 = 1;
const STATUS_NO_SUCH_FILE: u32 = 2;

const OPEN_READ: u32 = 0x1;
const OPEN_WRITE: u32 = 0x2;

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;

/// The largest answer accepted: a READ answer is at most `CHUNK` bytes of data plus its header.
pub const MAX_PACKET: usize = 256 << 10;
/// The most one READ asks for (LXD's SFTP server returns at most 32 KiB per read).
pub const CHUNK: usize = 32 << 10;

/// What a path names, from the type bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Fifo,
    CharDevice,
    Directory,
    BlockDevice,
    Regular,
    Symlink,
    Socket,
    Unknown,
}

impl FileType {
    /// The type of a file with permission bits `mode` (st_mode).
    pub fn from_mode(mode: u32) -> Self {
        match mode & 0o170000 {
            0o010000 => FileType::Fifo,
            0o020000 => FileType::CharDevice,
            0o040000 => FileType::Directory,
            0o060000 => FileType::BlockDevice,
            0o100000 => FileType::Regular,
            0o120000 => FileType::Symlink,
            0o140000 => FileType::Socket,
            _ => FileType::Unknown,
        }
    }

    /// How messages name it: "a FIFO", "a regular file", ...
    pub fn describe(self) -> &'static str {
        match self {
            FileType::Fifo => "a FIFO",
            FileType::CharDevice => "a character device",
            FileType::Directory => "a directory",
            FileType::BlockDevice => "a block device",
            FileType::Regular => "a regular file",
            FileType::Symlink => "a symbolic link",
            FileType::Socket => "a socket",
            FileType::Unknown => "of an unknown type",
        }
    }
}

/// What one read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTail {
    /// The path's type (links not followed); `None` when nothing is there.
    pub kind: Option<FileType>,
    /// A regular file's last bytes (at most the limit asked for); empty otherwise.
    pub data: Bytes,
    /// A regular file's size when it was opened; 0 otherwise.
    pub size: u64,
}

/// The attributes the reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
}

impl Attrs {
    fn kind(&self) -> FileType {
        self.permissions
            .map_or(FileType::Unknown, FileType::from_mode)
    }
}

/// One decoded answer from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status { code: u32, message: String },
    Handle(Vec<u8>),
    Data(Bytes),
    Attrs(Attrs),
}

// -- encoding ------------------------------------------------------------------------------------

fn put_string(buffer: &mut Vec<u8>, data: &[u8]) {
    // Paths and handles are short: a length that does not fit is a caller's bug.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    buffer.extend_from_slice(&length.to_be_bytes());
    buffer.extend_from_slice(data);
}

/// A whole packet: length, type, then the request id (all but INIT) and the payload.
fn packet(kind: u8, id: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let length = 1 + id.map_or(0, |_| 4) + payload.len();
    let mut out = Vec::with_capacity(4 + length);
    out.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
    out.push(kind);
    if let Some(id) = id {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// INIT, asking for version 3.
pub fn init() -> Vec<u8> {
    packet(INIT, None, &3u32.to_be_bytes())
}

/// LSTAT of `path`.
pub fn lstat(id: u32, path: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    put_string(&mut payload, path.as_bytes());
    packet(LSTAT, Some(id), &payload)
}

/// OPEN of `path` for reading and writing, with no attributes.
pub fn open(id: u32, path: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    put_string(&mut payload, path.as_bytes());
    payload.extend_from_slice(&(OPEN_READ | OPEN_WRITE).to_be_bytes());
    payload.extend_from_slice(&0u32.to_be_bytes());
    packet(OPEN, Some(id), &payload)
}

/// FSTAT of an open handle.
pub fn fstat(id: u32, handle: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    put_string(&mut payload, handle);
    packet(FSTAT, Some(id), &payload)
}

/// READ of `length` bytes at `offset` of an open handle.
pub fn read(id: u32, handle: &[u8], offset: u64, length: u32) -> Vec<u8> {
    let mut payload = Vec::new();
    put_string(&mut payload, handle);
    payload.extend_from_slice(&offset.to_be_bytes());
    payload.extend_from_slice(&length.to_be_bytes());
    packet(READ, Some(id), &payload)
}

/// CLOSE of an open handle.
pub fn close(id: u32, handle: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    put_string(&mut payload, handle);
    packet(CLOSE, Some(id), &payload)
}

// -- decoding ------------------------------------------------------------------------------------

/// Reads big-endian fields off the front of a packet body.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.0.len() < count {
            return Err("malformed SFTP answer (too short)".into());
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(word))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(word))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let length = self.u32()? as usize;
        self.take(length)
    }
}

/// Decode ATTRS: size and permissions, skipping the owner; the rest is not needed.
fn attrs(fields: &mut Fields<'_>) -> Result<Attrs, String> {
    let flags = fields.u32()?;
    let size = if flags & ATTR_SIZE != 0 {
        Some(fields.u64()?)
    } else {
        None
    };
    if flags & ATTR_UIDGID != 0 {
        fields.take(8)?;
    }
    let permissions = if flags & ATTR_PERMISSIONS != 0 {
        Some(fields.u32()?)
    } else {
        None
    };
    Ok(Attrs { size, permissions })
}

/// Decode the body (after length and type) of an answer to request `id`.
pub fn parse_answer(kind: u8, body: &[u8], id: u32) -> Result<Answer, String> {
    let mut fields = Fields(body);
    if fields.u32()? != id {
        return Err("SFTP answer out of order".into());
    }
    match kind {
        STATUS => {
            let code = fields.u32()?;
            // Version 3 servers may leave out the message and language tag.
            let message = fields.string().unwrap_or_default();
            Ok(Answer::Status {
                code,
                message: String::from_utf8_lossy(message).into_owned(),
            })
        }
        HANDLE => Ok(Answer::Handle(fields.string()?.to_vec())),
        DATA => Ok(Answer::Data(Bytes::copy_from_slice(fields.string()?))),
        ATTRS => Ok(Answer::Attrs(attrs(&mut fields)?)),
        other => Err(format!("unexpected SFTP answer of type {other}")),
    }
}

/// The error an answer other than the one wanted stands for.
fn unexpected(answer: Answer, path: &str) -> String {
    match answer {
        Answer::Status { code, message } if message.is_empty() => {
            format!("{path}: SFTP status {code}")
        }
        Answer::Status { message, .. } => format!("{path}: {message}"),
        _ => format!("{path}: unexpected SFTP answer"),
    }
}

// -- the session ---------------------------------------------------------------------------------

/// One SFTP session on an upgraded connection: numbered requests, one at a time.
struct Session<'a, S> {
    io: &'a mut S,
    next_id: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn send(&mut self, packet: &[u8]) -> Result<(), String> {
        self.io
            .write_all(packet)
            .await
            .map_err(|e| format!("SFTP request failed: {e}"))?;
        self.io
            .flush()
            .await
            .map_err(|e| format!("SFTP request failed: {e}"))
    }

    async fn receive(&mut self) -> Result<(u8, Vec<u8>), String> {
        let mut header = [0u8; 5];
        self.io.read_exact(&mut header).await.map_err(closed)?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if !(1..=MAX_PACKET).contains(&length) {
            return Err(format!("SFTP packet of {length} bytes"));
        }
        let mut body = vec![0u8; length - 1];
        self.io.read_exact(&mut body).await.map_err(closed)?;
        Ok((header[4], body))
    }

    async fn request(&mut self, make: impl FnOnce(u32) -> Vec<u8>) -> Result<Answer, String> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.send(&make(id)).await?;
        let (kind, body) = self.receive().await?;
        parse_answer(kind, &body, id)
    }

    async fn handshake(&mut self) -> Result<(), String> {
        self.send(&init()).await?;
        match self.receive().await? {
            (VERSION, body) if body.len() >= 4 => Ok(()),
            _ => Err("not an SFTP server".into()),
        }
    }

    /// Read from `offset` until end of file or `max` bytes.
    async fn read_from(
        &mut self,
        handle: &[u8],
        mut offset: u64,
        max: usize,
        path: &str,
    ) -> Result<Bytes, String> {
        let mut data = BytesMut::new();
        while data.len() < max {
            let want = (max - data.len()).min(CHUNK);
            // `want` is at most CHUNK, which fits.
            let length = u32::try_from(want).unwrap_or(u32::MAX);
            match self.request(|id| read(id, handle, offset, length)).await? {
                Answer::Data(chunk) if chunk.is_empty() => break,
                Answer::Data(chunk) if chunk.len() > want => {
                    return Err(format!("{path}: SFTP read returned more than asked"));
                }
                Answer::Data(chunk) => {
                    offset += chunk.len() as u64;
                    data.extend_from_slice(&chunk);
                }
                Answer::Status {
                    code: STATUS_EOF, ..
                } => break,
                other => return Err(unexpected(other, path)),
            }
        }
        Ok(data.freeze())
    }
}

fn closed(err: std::io::Error) -> String {
    if err.kind() == std::io::ErrorKind::UnexpectedEof {
        "the SFTP connection closed".into()
    } else {
        format!("SFTP connection failed: {err}")
    }
}

/// Read the last `max` bytes of the regular file `path` over the SFTP session on `io`.
///
/// Anything but a regular file is reported by its type, never opened (with `lstat_first`
/// false the LSTAT is skipped: tests use that to stand for a FIFO swapped in after it). A
/// file without a size in its attributes is read from its start. Reading stops at `max` bytes
/// even if the file grew since it was opened.
pub async fn read_tail<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    path: &str,
    max: usize,
    lstat_first: bool,
) -> Result<FileTail, String> {
    let mut session = Session { io, next_id: 0 };
    session.handshake().await?;
    let other = |kind| FileTail {
        kind: Some(kind),
        data: Bytes::new(),
        size: 0,
    };
    if lstat_first {
        match session.request(|id| lstat(id, path)).await? {
            Answer::Attrs(found) if found.kind() == FileType::Regular => {}
            Answer::Attrs(found) => return Ok(other(found.kind())),
            Answer::Status {
                code: STATUS_NO_SUCH_FILE,
                ..
            } => {
                return Ok(FileTail {
                    kind: None,
                    data: Bytes::new(),
                    size: 0,
                })
            }
            answer => return Err(unexpected(answer, path)),
        }
    }
    let handle = match session.request(|id| open(id, path)).await? {
        Answer::Handle(handle) => handle,
        answer => return Err(unexpected(answer, path)),
    };
    // On a failure below, the handle goes with the connection, which the caller drops.
    let opened = match session.request(|id| fstat(id, &handle)).await? {
        Answer::Attrs(opened) => opened,
        answer => return Err(unexpected(answer, path)),
    };
    if opened.kind() != FileType::Regular {
        session.request(|id| close(id, &handle)).await?;
        return Ok(other(opened.kind()));
    }
    let size = opened.size.unwrap_or(0);
    let start = size.saturating_sub(max as u64);
    let data = session.read_from(&handle, start, max, path).await?;
    session.request(|id| close(id, &handle)).await?;
    Ok(FileTail {
        kind: Some(FileType::Regular),
        data,
        size,
    })
}

#[cfg(test)]
#[path = "sftp_tests.rs"]
mod tests;

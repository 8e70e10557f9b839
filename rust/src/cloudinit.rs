//! Cloud-config assembly: the `#cloud-config` YAML document and base64, without an interpreter.
//!
//! Python decides what goes into the document and hands it over as JSON; this module owns the
//! key order and the quoting, so that any YAML parser (cloud-init uses PyYAML) reads back
//! exactly the strings it was given.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::Deserialize;

use crate::error::Error;

/// The cloud-config document, in the key order garm-provider-common emits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    pub users: Vec<String>,
    pub package_upgrade: bool,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    pub system_info: SystemInfo,
    #[serde(default)]
    pub runcmd: Vec<String>,
    #[serde(default)]
    pub write_files: Vec<WriteFile>,
    #[serde(default)]
    pub ca_certs: Option<CaCerts>,
    #[serde(default)]
    pub bootcmd: Vec<String>,
}

/// `system_info`: only the default user is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInfo {
    pub default_user: DefaultUser,
}

/// The user the runner runs as.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultUser {
    pub name: String,
    pub home: String,
    pub shell: String,
    pub groups: Vec<String>,
    pub sudo: String,
}

/// One `write_files` entry; `content` is already encoded as `encoding` says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    pub encoding: String,
    pub content: String,
    pub owner: String,
    pub path: String,
    pub permissions: String,
}

/// `ca-certs`: extra trusted PEM bundles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaCerts {
    pub remove_defaults: bool,
    pub trusted: Vec<String>,
}

/// Parse a JSON description (the fields of [`CloudConfig`]) and render the document.
pub fn cloud_config_from_json(spec: &[u8]) -> Result<String, Error> {
    let config: CloudConfig = serde_json::from_slice(spec)
        .map_err(|err| Error::Invalid(format!("invalid cloud-config description: {err}")))?;
    Ok(render(&config))
}

/// Render the `#cloud-config` document; empty optional sections are left out.
pub fn render(config: &CloudConfig) -> String {
    let mut out = String::from("#cloud-config\n");
    seq(&mut out, 0, "users", &config.users);
    let upgrade = if config.package_upgrade {
        "true"
    } else {
        "false"
    };
    out.push_str(&format!("package_upgrade: {upgrade}\n"));
    seq(&mut out, 0, "packages", &config.packages);
    seq(
        &mut out,
        0,
        "ssh_authorized_keys",
        &config.ssh_authorized_keys,
    );
    let user = &config.system_info.default_user;
    out.push_str("system_info:\n  default_user:\n");
    field(&mut out, 4, "name", &user.name);
    field(&mut out, 4, "home", &user.home);
    field(&mut out, 4, "shell", &user.shell);
    seq(&mut out, 4, "groups", &user.groups);
    field(&mut out, 4, "sudo", &user.sudo);
    seq(&mut out, 0, "runcmd", &config.runcmd);
    if !config.write_files.is_empty() {
        out.push_str("write_files:\n");
        for file in &config.write_files {
            out.push_str("- ");
            field(&mut out, 0, "encoding", &file.encoding);
            field(&mut out, 2, "content", &file.content);
            field(&mut out, 2, "owner", &file.owner);
            field(&mut out, 2, "path", &file.path);
            field(&mut out, 2, "permissions", &file.permissions);
        }
    }
    if let Some(ca) = &config.ca_certs {
        let remove = if ca.remove_defaults { "true" } else { "false" };
        out.push_str(&format!("ca-certs:\n  remove-defaults: {remove}\n"));
        seq(&mut out, 2, "trusted", &ca.trusted);
    }
    seq(&mut out, 0, "bootcmd", &config.bootcmd);
    out
}

/// `key: value` at `indent` columns.
fn field(out: &mut String, indent: usize, key: &str, value: &str) {
    push_indent(out, indent);
    out.push_str(key);
    out.push_str(": ");
    out.push_str(&scalar(value, indent + 2));
    out.push('\n');
}

/// A block sequence of strings under `key`; nothing at all when it is empty.
fn seq(out: &mut String, indent: usize, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    push_indent(out, indent);
    out.push_str(key);
    out.push_str(":\n");
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        out.push_str(&scalar(item, indent + 2));
        out.push('\n');
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Words YAML 1.1 resolvers (PyYAML) read as booleans or null when left unquoted.
const RESERVED: [&str; 11] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
];

/// Characters that may appear unescaped in any YAML scalar and that no parser treats as a
/// line break or byte-order mark.
fn printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Plain (unquoted) only for strings that cannot be read as anything but themselves: they
/// start with a letter or '/', so they are never numbers, dates, or indicators.
fn plain_ok(s: &str) -> bool {
    let starts_well = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/');
    starts_well
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _./:=@,+()~%-".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// A literal block keeps multi-line text (PEM bundles, scripts) readable; the first line
/// must not start with a space or the indentation would be misread.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars().all(|c| c == '\n' || c == '\t' || printable(c))
}

/// The YAML form of one string scalar; `indent` is where a block scalar's lines start.
pub fn scalar(s: &str, indent: usize) -> String {
    if plain_ok(s) {
        return s.to_owned();
    }
    if literal_ok(s) {
        return literal(s, indent);
    }
    if !s.contains('\n') && s.chars().all(printable) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

fn literal(s: &str, indent: usize) -> String {
    let body = s.strip_suffix('\n').unwrap_or(s);
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if body.ends_with('\n') {
        "+"
    } else {
        ""
    };
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xff => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (Go's `base64.StdEncoding`).
pub fn b64encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(BASE64_ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Render a cloud-config document from its JSON description.
#[pyfunction(name = "cloud_config")]
pub fn cloud_config_py<'py>(py: Python<'py>, spec: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let text = cloud_config_from_json(spec)?;
    Ok(PyBytes::new(py, text.as_bytes()))
}

/// Encode bytes as standard, padded base64.
#[pyfunction(name = "b64encode")]
pub fn b64encode_py(data: &[u8]) -> String {
    b64encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> String {
        format!(
            r#"{{"users":["default"],"package_upgrade":true,"packages":["curl","tar"],
            "system_info":{{"default_user":{{"name":"runner","home":"/home/runner",
            "shell":"/bin/bash","groups":["sudo","lxd"],"sudo":"ALL=(ALL) NOPASSWD:ALL"}}}},
            "runcmd":["su -l -c /install_runner.sh runner"],
            "write_files":[{{"encoding":"b64","content":"ZWNobwo=","owner":"root:root",
            "path":"/install_runner.sh","permissions":"755"}}]{extra}}}"#
        )
    }

    #[test]
    fn renders_sections_in_reference_order() {
        let text = cloud_config_from_json(spec("").as_bytes()).expect("valid spec");
        let expected = "#cloud-config\nusers:\n- default\npackage_upgrade: true\npackages:\n\
            - curl\n- tar\nsystem_info:\n  default_user:\n    name: runner\n    home: /home/runner\n\
            \x20   shell: /bin/bash\n    groups:\n    - sudo\n    - lxd\n\
            \x20   sudo: ALL=(ALL) NOPASSWD:ALL\nruncmd:\n- su -l -c /install_runner.sh runner\n\
            write_files:\n- encoding: b64\n  content: ZWNobwo=\n  owner: root:root\n\
            \x20 path: /install_runner.sh\n  permissions: '755'\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_optional_sections_are_left_out() {
        let text = cloud_config_from_json(spec(r#","bootcmd":[],"ca_certs":null"#).as_bytes())
            .expect("valid spec");
        assert!(!text.contains("bootcmd"));
        assert!(!text.contains("ca-certs"));
        assert!(!text.contains("ssh_authorized_keys"));
    }

    #[test]
    fn ca_bundle_is_a_literal_block() {
        let extra = r#","ca_certs":{"remove_defaults":false,"trusted":["-----BEGIN X-----\nAB\n-----END X-----\n"]}"#;
        let text = cloud_config_from_json(spec(extra).as_bytes()).expect("valid spec");
        assert!(text.ends_with(
            "ca-certs:\n  remove-defaults: false\n  trusted:\n  - |\n    -----BEGIN X-----\n    AB\n    -----END X-----\n"
        ));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = cloud_config_from_json(spec(r#","nope":1"#).as_bytes()).expect_err("bad spec");
        assert!(err.to_string().contains("unknown field `nope`"));
    }

    #[test]
    fn scalars_that_would_change_type_are_quoted() {
        assert_eq!(scalar("755", 0), "'755'");
        assert_eq!(scalar("yes", 0), "'yes'");
        assert_eq!(scalar("No", 0), "'No'");
        assert_eq!(scalar("", 0), "''");
        assert_eq!(scalar("a: b", 0), "'a: b'");
        assert_eq!(scalar("it's", 0), "'it''s'");
        assert_eq!(scalar("x #y", 0), "'x #y'");
        assert_eq!(scalar("- x", 0), "'- x'");
        assert_eq!(scalar("*alias", 0), "'*alias'");
        assert_eq!(scalar("/etc/x", 0), "/etc/x");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(scalar("a\tb", 0), "\"a\\tb\"");
        assert_eq!(scalar("a\u{1}\"\\", 0), "\"a\\x01\\\"\\\\\"");
        assert_eq!(scalar("\u{2028}", 0), "\"\\u2028\"");
        assert_eq!(scalar("\u{1f600}", 0), "\"\\U0001f600\"");
        assert_eq!(scalar("\u{feff}x", 0), "\"\\ufeffx\"");
    }

    #[test]
    fn literal_blocks_keep_trailing_newlines() {
        assert_eq!(scalar("a\nb", 2), "|-\n  a\n  b");
        assert_eq!(scalar("a\n\nb\n", 2), "|\n  a\n\n  b");
        assert_eq!(scalar("a\n\n", 2), "|+\n  a\n");
        assert_eq!(scalar(" a\nb", 2), "\" a\\nb\"");
        assert_eq!(scalar("\na", 2), "\"\\na\"");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(b64encode(plain.as_bytes()), encoded);
        }
        assert_eq!(b64encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }
}

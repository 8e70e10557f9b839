use super::*;

use pyo3::types::PyListMethods;

/// Run `f` with an interpreter (these conversions build Python objects).
fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

/// `repr()` of what `json_loads` makes of `json`; repr shows key order and exact types.
fn loads_repr(json: &str) -> String {
    with_py(|py| match json_loads(py, json.as_bytes()) {
        Ok(value) => value.repr().map(|r| r.to_string()).unwrap_or_default(),
        Err(msg) => format!("error: {msg}"),
    })
}

/// `repr()` of what `toml_loads` makes of `text`, or the error message.
fn toml_repr(text: &str) -> String {
    with_py(|py| match toml_loads(py, text) {
        Ok(value) => value.repr().map(|r| r.to_string()).unwrap_or_default(),
        Err(msg) => format!("error: {msg}"),
    })
}

/// Evaluate a Python expression and dump it; errors as "TypeName: message".
fn dumps_of(expr: &str) -> Result<String, String> {
    with_py(|py| {
        let code = std::ffi::CString::new(expr).map_err(|e| e.to_string())?;
        let value = py.eval(&code, None, None).map_err(|e| e.to_string())?;
        json_dumps(&value)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|err| err.to_string())
    })
}

#[test]
fn object_keys_keep_document_order() {
    assert_eq!(
        loads_repr(r#"{"z": 1, "a": {"y": null, "b": [true, false]}, "m": "x"}"#),
        "{'z': 1, 'a': {'y': None, 'b': [True, False]}, 'm': 'x'}"
    );
}

#[test]
fn duplicate_keys_keep_first_position_and_last_value() {
    assert_eq!(
        loads_repr(r#"{"a": 1, "b": 2, "a": 3}"#),
        "{'a': 3, 'b': 2}"
    );
}

#[test]
fn integers_are_exact_across_i64_and_u64() {
    assert_eq!(
        loads_repr("[18446744073709551615, -9223372036854775808, 0]"),
        "[18446744073709551615, -9223372036854775808, 0]"
    );
    // serde_json keeps the sign of "-0" by reading it as a float, as documented.
    assert_eq!(loads_repr("-0"), "-0.0");
    // Beyond u64 serde_json falls back to a float, as documented.
    assert_eq!(loads_repr("18446744073709551616"), "1.8446744073709552e+19");
    assert_eq!(
        dumps_of("[2**64 - 1, -2**63]").as_deref(),
        Ok("[18446744073709551615,-9223372036854775808]")
    );
    let err = dumps_of("2**64").expect_err("out of range");
    assert!(err.starts_with("ValueError: int out of range"), "{err}");
    let err = dumps_of("-2**63 - 1").expect_err("out of range");
    assert!(err.starts_with("ValueError:"), "{err}");
}

#[test]
fn floats_parse_and_print() {
    assert_eq!(
        loads_repr("[1.5, -0.0, 1e300, 2.5E-3, 1.0]"),
        "[1.5, -0.0, 1e+300, 0.0025, 1.0]"
    );
    assert_eq!(dumps_of("[1.5, 0.1, 1.0]").as_deref(), Ok("[1.5,0.1,1.0]"));
    assert_eq!(
        loads_repr(&dumps_of("[0.1, 1e-7, 123456789.125]").unwrap_or_default()),
        "[0.1, 1e-07, 123456789.125]"
    );
}

#[test]
fn floats_read_back_bit_for_bit() {
    // Python's repr is the shortest text that reads back exactly; serde_json must agree
    // (its default, faster float parser is off by an ulp on about a third of these).
    let wrong = with_py(|py| {
        let mut wrong = Vec::new();
        let mut bits: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            bits ^= bits << 13;
            bits ^= bits >> 7;
            bits ^= bits << 17;
            let x = f64::from_bits(bits);
            if !x.is_finite() {
                continue;
            }
            let text = PyFloat::new(py, x)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default();
            let back = json_loads(py, text.as_bytes())
                .and_then(|v| v.extract::<f64>().map_err(|e| e.to_string()));
            if back.map(f64::to_bits) != Ok(bits) {
                wrong.push(text);
            }
        }
        wrong
    });
    assert!(
        wrong.is_empty(),
        "{} wrong, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
}

#[test]
fn nan_and_infinity_are_refused() {
    for expr in ["float('nan')", "[float('inf')]", "{'a': -float('inf')}"] {
        let err = dumps_of(expr).expect_err("not JSON");
        assert!(err.starts_with("ValueError: Out of range float"), "{err}");
    }
}

#[test]
fn output_is_compact_and_keeps_insertion_order() {
    assert_eq!(
        dumps_of("{'b': 1, 'a': [True, None, (2, 'x')], 'c': {}}").as_deref(),
        Ok(r#"{"b":1,"a":[true,null,[2,"x"]],"c":{}}"#)
    );
}

#[test]
fn strings_with_escapes_and_unicode_round_trip() {
    let expr = r#"['caf\u00e9 \u2603 \U0001F600', 'q"b\\s/\n\t\r\b\f', '\x00\x1f\x7f', '']"#;
    let json = dumps_of(expr).expect("serializable");
    // Non-ASCII is written as UTF-8, control characters escaped.
    assert!(json.contains("café ☃ 😀"), "{json}");
    assert!(json.contains(r#"q\"b\\s/\n\t\r\b\f"#), "{json}");
    assert!(json.contains(r#"\u0000\u001f"#), "{json}");
    let same = with_py(|py| {
        let code = std::ffi::CString::new(expr).unwrap_or_default();
        let original = py.eval(&code, None, None).map_err(|e| e.to_string())?;
        let back = json_loads(py, json.as_bytes())?;
        back.eq(original).map_err(|e| e.to_string())
    });
    assert_eq!(same, Ok(true));
    assert_eq!(loads_repr(r#""\u00e9\ud83d\ude00\"""#), r#"'é😀"'"#);
}

#[test]
fn lone_surrogate_cannot_be_dumped() {
    let err = dumps_of(r"'\ud800'").expect_err("not UTF-8");
    assert!(err.starts_with("UnicodeEncodeError"), "{err}");
}

#[test]
fn non_str_keys_and_unknown_types_are_type_errors() {
    assert_eq!(
        dumps_of("{1: 'a'}"),
        Err("TypeError: keys must be str, not int".to_owned())
    );
    assert_eq!(
        dumps_of("[{1, 2}]"),
        Err("TypeError: Object of type set is not JSON serializable".to_owned())
    );
    assert_eq!(
        dumps_of("b'x'"),
        Err("TypeError: Object of type bytes is not JSON serializable".to_owned())
    );
}

#[test]
fn bool_is_not_written_as_int() {
    assert_eq!(
        dumps_of("[True, False, 1]").as_deref(),
        Ok("[true,false,1]")
    );
}

#[test]
fn nesting_beyond_the_limit_is_an_error() {
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(!loads_repr(&ok).starts_with("error"));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(
        loads_repr(&deep).starts_with("error: recursion limit exceeded"),
        "{}",
        loads_repr(&deep)
    );
    assert!(dumps_of(&format!("{}{}", "[".repeat(128), "]".repeat(128))).is_ok());
    let err = dumps_of(&format!("{}{}", "[".repeat(129), "]".repeat(129))).expect_err("deep");
    assert!(err.contains("nested too deeply"), "{err}");
}

#[test]
fn self_referential_list_is_refused_without_overflow() {
    let err = with_py(|py| {
        let list = PyList::empty(py);
        list.append(&list).map_err(|e| e.to_string())?;
        let result = json_dumps(list.as_any()).map_err(|e| e.to_string());
        // Break the cycle so the list is freed.
        list.del_item(0).map_err(|e| e.to_string())?;
        result.map(|_| ())
    })
    .expect_err("cycle");
    assert!(
        err.starts_with("ValueError: JSON value nested too deeply"),
        "{err}"
    );
}

#[test]
fn bad_json_gives_one_line_with_position() {
    assert_eq!(
        loads_repr("[1, 2] x"),
        "error: trailing characters at line 1 column 8"
    );
    assert_eq!(
        loads_repr("{\n \"a\": }"),
        "error: expected value at line 2 column 7"
    );
    assert_eq!(
        loads_repr(""),
        "error: EOF while parsing a value at line 1 column 0"
    );
    assert_eq!(
        loads_repr("[1,]"),
        "error: trailing comma at line 1 column 4"
    );
    assert_eq!(loads_repr(" [1] \n\t"), "[1]");
}

#[test]
fn toml_tables_arrays_and_inline_tables_keep_order() {
    let doc = r#"
log_file = "/var/log/garm.log"
count = 0x1F
ratio = 1_000.5
flags = [true, false]

[lxd]
url = "https://lxd:8443"
remote = { name = "images", protocol = "simplestreams" }

[[images]]
alias = "ubuntu"
[[images]]
alias = "debian"
nested = [[1, 2], ["a"]]
"#;
    assert_eq!(
        toml_repr(doc),
        "{'log_file': '/var/log/garm.log', 'count': 31, 'ratio': 1000.5, 'flags': [True, False], \
         'lxd': {'url': 'https://lxd:8443', 'remote': {'name': 'images', 'protocol': 'simplestreams'}}, \
         'images': [{'alias': 'ubuntu'}, {'alias': 'debian', 'nested': [[1, 2], ['a']]}]}"
    );
}

#[test]
fn toml_datetimes_are_strings() {
    let doc =
        "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.5-07:00\nc = 1979-05-27\nd = 07:32:00\n";
    assert_eq!(
        toml_repr(doc),
        "{'a': '1979-05-27T07:32:00Z', 'b': '1979-05-27T00:32:00.5-07:00', 'c': '1979-05-27', 'd': '07:32:00'}"
    );
}

#[test]
fn toml_numbers_at_the_edges() {
    assert_eq!(
        toml_repr("a = -9223372036854775808\nb = 9223372036854775807\nc = inf\nd = -inf\ne = 0o17\nf = 0b101\n"),
        "{'a': -9223372036854775808, 'b': 9223372036854775807, 'c': inf, 'd': -inf, 'e': 15, 'f': 5}"
    );
    assert_eq!(toml_repr("n = nan\nm = -nan\n"), "{'n': nan, 'm': nan}");
    assert_eq!(
        toml_repr("x = 1\ny = 1e400\n"),
        "error: floating-point number overflowed at line 2, column 5"
    );
}

#[test]
fn toml_errors_are_one_line_with_position_and_no_source() {
    let secret = "s3cr3t-token";
    let msg = toml_repr(&format!("a = 1\ntoken = \"{secret}\"\na = 2\n"));
    assert_eq!(msg, "error: duplicate key at line 3, column 1");
    let msg = toml_repr(&format!("[x]\nkey = {secret}\n"));
    assert!(msg.starts_with("error: "), "{msg}");
    assert!(msg.ends_with(" at line 2, column 7"), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains(secret), "{msg}");
    let deep = format!("a = {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(toml_repr(&deep).starts_with("error: "));
}

#[test]
fn toml_error_position_counts_characters() {
    let text = "k = \"é\"\nkéy = 1\n";
    let at = text.rfind('=').unwrap_or_default();
    assert_eq!(
        toml_error_message(text, "bad\nthing", Some(at..at + 1)),
        "bad; thing at line 2, column 5"
    );
    assert_eq!(toml_error_message(text, "no span", None), "no span");
    assert_eq!(
        toml_error_message("", "eof", Some(0..0)),
        "eof at line 1, column 1"
    );
}

#[test]
fn toml_integers_wider_than_64_bits_stay_exact() {
    assert_eq!(
        toml_repr("a = 18446744073709551615\nb = -170141183460469231731687303715884105728\n"),
        "{'a': 18446744073709551615, 'b': -170141183460469231731687303715884105728}"
    );
    assert_eq!(
        toml_repr("a = 340282366920938463463374607431768211456\n"),
        "error: integer number overflowed at line 1, column 5"
    );
}

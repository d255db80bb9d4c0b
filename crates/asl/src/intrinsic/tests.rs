//! One test per rule of "Intrinsic functions for JSONPath states in Step
//! Functions" (AWS Step Functions Developer Guide,
//! https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html);
//! each names the section it follows.

use super::*;
use serde_json::json;

fn run(expr: &str, input: Value) -> Result<Value, StateError> {
    let ctx = || json!({"Execution": {"Name": "exec-1"}});
    let env = Env::new(&input, &ctx);
    Call::parse(expr).map_err(StateError::intrinsic)?.eval(&env)
}

fn ok(expr: &str, input: Value) -> Value {
    run(expr, input).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn error(expr: &str, input: Value) -> StateError {
    run(expr, input).expect_err(expr)
}

/// The error of a call that evaluates, never one that fails to parse.
fn eval_error(expr: &str, input: Value) -> StateError {
    let call = Call::parse(expr).unwrap_or_else(|e| panic!("{expr} should parse: {e}"));
    let ctx = || json!({});
    call.eval(&Env::new(&input, &ctx)).expect_err(expr)
}

// --- Intrinsic functions (page introduction) ---

#[test]
fn at_most_ten_functions_in_one_field() {
    // The guide's own example: nine nested functions in one field.
    let nine = "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.arn, '/'), 2), '.'), 1))";
    assert_eq!(ok(nine, json!({"arn": "arn:aws:imagebuilder:r:1:image-recipe/x/1.2.3"})), json!("1.2"));
    let mut eleven = "States.Array()".to_string();
    for _ in 0..10 {
        eleven = format!("States.Array({eleven})");
    }
    let ten = eleven.strip_prefix("States.Array(").unwrap().strip_suffix(')').unwrap();
    assert!(Call::parse(ten).is_ok());
    let e = Call::parse(&eleven).unwrap_err();
    assert!(e.contains("11 intrinsic functions in one field"), "{e}");
}

// --- Reserved characters in intrinsic functions ---

#[test]
fn reserved_characters_are_escaped_with_a_backslash() {
    assert_eq!(ok(r"States.Format('it\'s \{literal\} {}', $.x)", json!({"x": 1})), json!("it's {literal} 1"));
    assert_eq!(ok(r"States.Array('a\\b')", json!({})), json!([r"a\b"]));
    // An escaped backslash stays one in a template too.
    assert_eq!(ok(r"States.Format('C:\\dir\\{}', $.f)", json!({"f": "x"})), json!(r"C:\dir\x"));
}

#[test]
fn an_open_escape_backslash_is_a_runtime_error() {
    for expr in [r"States.Format('a\nb')", r"States.Array('tab\there')", r"States.Array('x', 'a\xb')"] {
        let e = eval_error(expr, json!({}));
        assert_eq!(e.error, "States.Runtime", "{expr}");
        assert!(e.cause.contains("Invalid escape"), "{}", e.cause);
    }
}

#[test]
fn path_arguments_need_brackets_for_names_outside_the_shorthand() {
    let e = Call::parse("States.Array($.my-field)").unwrap_err();
    assert!(e.contains("['my-field']"), "{e}");
    assert!(Call::parse("States.Array($.abc['def ghi'])").is_ok());
    assert_eq!(
        ok("States.Array($['my-field'], $.under_score1)", json!({"my-field": 1, "under_score1": 2})),
        json!([1, 2])
    );
    assert!(Call::parse("States.Array($.1abc)").is_err());
}

// --- Intrinsics for arrays ---

#[test]
fn array_takes_zero_or_more_arguments_in_order() {
    assert_eq!(ok("States.Array()", json!({})), json!([]));
    assert_eq!(
        ok("States.Array('Foo', 2020, $.someJson, null)", json!({"someJson": {"random": "abcdefg"}})),
        json!(["Foo", 2020, {"random": "abcdefg"}, null])
    );
}

#[test]
fn array_partition_chunks_with_a_shorter_last_chunk() {
    assert_eq!(
        ok("States.ArrayPartition($.a, 4)", json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})),
        json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
    );
}

#[test]
fn array_partition_needs_an_array_and_a_positive_chunk_size() {
    assert_eq!(error("States.ArrayPartition($.a, 2)", json!({"a": "x"})).error, "States.IntrinsicFailure");
    for size in ["0", "-1", "0.4"] {
        let e = error(&format!("States.ArrayPartition($.a, {size})"), json!({"a": [1]}));
        assert_eq!(e.error, "States.IntrinsicFailure", "{size}");
    }
}

#[test]
fn array_partition_rounds_a_non_integer_chunk_size() {
    assert_eq!(ok("States.ArrayPartition($.a, 1.6)", json!({"a": [1, 2, 3]})), json!([[1, 2], [3]]));
    assert_eq!(ok("States.ArrayPartition($.a, 2.5)", json!({"a": [1, 2, 3, 4]})), json!([[1, 2, 3], [4]]));
}

#[test]
fn array_inputs_may_not_exceed_the_payload_quota() {
    let big = json!({"a": ["x".repeat(limits_payload())]});
    assert_eq!(error("States.ArrayPartition($.a, 1)", big.clone()).error, "States.IntrinsicFailure");
    assert_eq!(error("States.ArrayContains($.a, 1)", big).error, "States.IntrinsicFailure");
}

fn limits_payload() -> usize {
    crate::limits::PAYLOAD_BYTES
}

#[test]
fn array_contains_finds_any_json_value() {
    assert_eq!(ok("States.ArrayContains($.a, $.x)", json!({"a": [1, 2, 3, 4, 5], "x": 5})), json!(true));
    assert_eq!(
        ok("States.ArrayContains($.a, $.x)", json!({"a": [{"k": [1]}], "x": {"k": [1]}})),
        json!(true)
    );
    assert_eq!(ok("States.ArrayContains($.a, 9)", json!({"a": [1, 2, 3]})), json!(false));
    assert_eq!(ok("States.ArrayContains($.a, 1)", json!({"a": [1.0]})), json!(true));
    assert_eq!(error("States.ArrayContains($.a, 1)", json!({"a": {}})).error, "States.IntrinsicFailure");
}

#[test]
fn array_range_builds_start_to_end_by_step() {
    assert_eq!(ok("States.ArrayRange(1, 9, 2)", json!({})), json!([1, 3, 5, 7, 9]));
    assert_eq!(ok("States.ArrayRange(3, 1, -1)", json!({})), json!([3, 2, 1]));
}

#[test]
fn array_range_rounds_non_integer_arguments() {
    assert_eq!(ok("States.ArrayRange(0.6, 4.4, 1.5)", json!({})), json!([1, 3]));
}

#[test]
fn array_range_step_must_not_be_zero() {
    assert_eq!(error("States.ArrayRange(1, 5, 0)", json!({})).error, "States.IntrinsicFailure");
    assert_eq!(error("States.ArrayRange(1, 5, 0.4)", json!({})).error, "States.IntrinsicFailure");
}

#[test]
fn array_range_has_at_most_1000_items() {
    assert_eq!(ok("States.ArrayRange(1, 1000, 1)", json!({})).as_array().unwrap().len(), 1000);
    assert_eq!(error("States.ArrayRange(1, 1001, 1)", json!({})).error, "States.IntrinsicFailure");
}

#[test]
fn array_get_item_returns_the_value_at_an_index() {
    assert_eq!(
        ok("States.ArrayGetItem($.a, $.i)", json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9], "i": 5})),
        json!(6)
    );
    assert_eq!(error("States.ArrayGetItem($.a, 5)", json!({"a": [1]})).error, "States.IntrinsicFailure");
}

#[test]
fn array_length_and_unique() {
    assert_eq!(ok("States.ArrayLength($.a)", json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})), json!(9));
    assert_eq!(ok("States.ArrayUnique($.a)", json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]})), json!([1, 2, 3, 4]));
    assert_eq!(ok("States.ArrayUnique($.a)", json!({"a": [1, 1.0, "1"]})), json!([1, "1"]));
    assert_eq!(ok("States.ArrayLength(States.Array(1, 2))", json!({})), json!(2));
}

// --- Intrinsics for data encoding and decoding ---

#[test]
fn base64_encode_and_decode_round_trip() {
    assert_eq!(
        ok("States.Base64Encode($.input)", json!({"input": "Data to encode"})),
        json!("RGF0YSB0byBlbmNvZGU=")
    );
    assert_eq!(ok("States.Base64Decode($.b)", json!({"b": "RGF0YSB0byBlbmNvZGU="})), json!("Data to encode"));
}

#[test]
fn base64_inputs_are_at_most_10000_characters() {
    // Characters, not bytes: 10,000 two-byte characters are accepted.
    assert!(run("States.Base64Encode($.s)", json!({"s": "é".repeat(10_000)})).is_ok());
    assert_eq!(
        error("States.Base64Encode($.s)", json!({"s": "a".repeat(10_001)})).error,
        "States.IntrinsicFailure"
    );
    assert_eq!(
        error("States.Base64Decode($.s)", json!({"s": "A".repeat(10_004)})).error,
        "States.IntrinsicFailure"
    );
}

// --- Intrinsic for hash calculation ---

#[test]
fn hash_supports_the_five_algorithms() {
    let cases = [
        ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
        ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "SHA-384",
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            "SHA-512",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    for (algo, want) in cases {
        assert_eq!(ok(&format!("States.Hash('abc', '{algo}')"), json!({})), json!(want), "{algo}");
    }
    assert_eq!(
        ok("States.Hash($.Data, $.Algorithm)", json!({"Data": "input data", "Algorithm": "SHA-1"})),
        json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
    );
    assert_eq!(error("States.Hash('abc', 'SHA-3')", json!({})).error, "States.IntrinsicFailure");
}

#[test]
fn hash_data_is_at_most_10000_characters() {
    assert!(run("States.Hash($.s, 'MD5')", json!({"s": "é".repeat(10_000)})).is_ok());
    assert_eq!(
        error("States.Hash($.s, 'MD5')", json!({"s": "a".repeat(10_001)})).error,
        "States.IntrinsicFailure"
    );
}

// --- Intrinsics for JSON data manipulation ---

#[test]
fn json_merge_is_shallow_and_the_latter_object_wins() {
    assert_eq!(
        ok(
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}})
        ),
        json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})
    );
    assert_eq!(error("States.JsonMerge($.a, $.a, true)", json!({"a": {}})).error, "States.IntrinsicFailure");
    assert_eq!(
        error("States.JsonMerge($.a, $.b, false)", json!({"a": {}, "b": [1]})).error,
        "States.IntrinsicFailure"
    );
}

#[test]
fn string_to_json_parses_and_json_to_string_serialises() {
    assert_eq!(ok("States.StringToJson($.s)", json!({"s": "{\"foo\": \"bar\"}"})), json!({"foo": "bar"}));
    assert_eq!(ok("States.JsonToString($.o)", json!({"o": {"foo": "bar"}})), json!("{\"foo\":\"bar\"}"));
    assert_eq!(error("States.StringToJson($.s)", json!({"s": "{"})).error, "States.IntrinsicFailure");
}

#[test]
fn json_to_string_takes_a_path() {
    let e = Call::parse("States.JsonToString('literal')").unwrap_err();
    assert!(e.contains("takes a path"), "{e}");
    assert_eq!(ok("States.JsonToString($$.Execution.Name)", json!({})), json!("\"exec-1\""));
}

// --- Intrinsics for Math operations ---

#[test]
fn math_random_is_start_inclusive_end_exclusive_and_seeded() {
    for _ in 0..50 {
        let r = ok("States.MathRandom(1, 3)", json!({})).as_i64().unwrap();
        assert!((1..3).contains(&r), "{r}");
    }
    assert_eq!(ok("States.MathRandom(1, 2)", json!({})), json!(1));
    assert_eq!(
        ok("States.MathRandom(1, 1000, 7)", json!({})),
        ok("States.MathRandom(1, 1000, 7)", json!({}))
    );
}

#[test]
fn math_random_rounds_a_non_integer_start_or_end() {
    // 0.6 rounds to 1 and 2.4 to 2: the only value left is 1.
    assert_eq!(ok("States.MathRandom(0.6, 2.4)", json!({})), json!(1));
    assert_eq!(error("States.MathRandom('a', 2)", json!({})).error, "States.IntrinsicFailure");
}

#[test]
fn math_add_sums_and_rounds_non_integers() {
    assert_eq!(ok("States.MathAdd($.value1, $.step)", json!({"value1": 111, "step": -1})), json!(110));
    assert_eq!(ok("States.MathAdd(1.5, 2.4)", json!({})), json!(4));
    assert_eq!(ok("States.MathAdd(-1.5, 0)", json!({})), json!(-1));
}

#[test]
fn math_add_arguments_are_32_bit_integers() {
    assert_eq!(ok("States.MathAdd(2147483647, -2147483648)", json!({})), json!(-1));
    assert_eq!(error("States.MathAdd(2147483648, 0)", json!({})).error, "States.IntrinsicFailure");
    assert_eq!(error("States.MathAdd(0, -2147483649)", json!({})).error, "States.IntrinsicFailure");
}

// --- Intrinsic for String operation ---

#[test]
fn string_split_uses_every_delimiter_character() {
    assert_eq!(
        ok("States.StringSplit($.s, $.d)", json!({"s": "1,2,3,4,5", "d": ","})),
        json!(["1", "2", "3", "4", "5"])
    );
    assert_eq!(
        ok("States.StringSplit('This.is+a,test=string', '.+,=')", json!({})),
        json!(["This", "is", "a", "test", "string"])
    );
}

// --- Intrinsic for unique identifier generation ---

#[test]
fn uuid_is_version_4() {
    let u = ok("States.UUID()", json!({}));
    let u = u.as_str().unwrap();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4");
    assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
}

// --- Intrinsic for generic operation ---

#[test]
fn format_fills_each_placeholder_with_its_argument() {
    assert_eq!(
        ok("States.Format('Hello, my name is {}.', $.name)", json!({"name": "Arnav"})),
        json!("Hello, my name is Arnav.")
    );
    assert_eq!(
        ok(
            "States.Format($.template, $.name)",
            json!({"name": "Arnav", "template": "Hello, my name is {}."})
        ),
        json!("Hello, my name is Arnav.")
    );
    assert_eq!(
        ok("States.Format('{} {} {} {}', 'a', 2020, true, null)", json!({})),
        json!("a 2020 true null")
    );
    assert_eq!(ok("States.Format('{}', $$.Execution.Name)", json!({})), json!("exec-1"));
}

#[test]
fn format_needs_as_many_arguments_as_placeholders() {
    assert!(Call::parse("States.Format('{} {}', $.a)").is_err());
    assert!(Call::parse("States.Format('{}', $.a, $.b)").is_err());
    assert_eq!(
        error("States.Format($.t, $.a)", json!({"t": "{} {}", "a": 1})).error,
        "States.IntrinsicFailure"
    );
}

#[test]
fn format_arguments_are_never_arrays_or_objects() {
    assert_eq!(error("States.Format('{}', $.o)", json!({"o": {}})).error, "States.IntrinsicFailure");
    assert_eq!(error("States.Format('{}', $.o)", json!({"o": [1]})).error, "States.IntrinsicFailure");
}

#[test]
fn a_template_from_the_input_has_no_escapes() {
    assert_eq!(ok("States.Format($.t, $.a)", json!({"t": r"50\% of {}", "a": "x"})), json!(r"50\% of x"));
}

#[test]
fn parse_errors_name_the_problem() {
    assert!(Call::parse("States.Nope(1)").unwrap_err().contains("unknown intrinsic"));
    assert!(Call::parse("States.ArrayLength()").unwrap_err().contains("takes 1"));
    assert!(Call::parse("States.Format('x'").is_err());
    assert!(Call::parse("States.UUID() extra").is_err());
}

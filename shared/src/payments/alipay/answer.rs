//! Alipay's synchronous answers and their signatures.
//!
//! An answer is `{"<method with . → _>_response":{…},"sign":"…"}`, and `sign` covers the raw
//! text of the response object exactly as sent: re-serialising it (key order, escapes such as
//! `\/` or `\u4e2d`, spacing) would change the bytes. So the object's text is cut out of the body
//! with a matcher that knows JSON strings — a `}` or an escaped quote inside a string does not
//! end the object — as the official Java SDK's `extractSignContent` does (the python SDK's
//! matcher counts braces inside strings too, and the npm SDK's cuts at the last `"sign"`).

use serde::Deserialize;

/// Where the JSON value starting at `start` ends (the index after it), for an object, array or
/// string: strings are skipped whole (an escaped quote, `\\`, braces and brackets inside them
/// count for nothing). `None` when the text ends first or `start` begins none of those.
pub fn value_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => None,
    }
}

/// The index after the string starting (with its quote) at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The members of the top-level object of `text` (already known to be valid JSON): each name,
/// decoded, with its value's raw text. Scalars (numbers, `true`, `null`) run to the next `,` or
/// `}`.
pub fn top_level_members(text: &str) -> Option<Vec<(String, &str)>> {
    let bytes = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    i = skip_ws(i + 1);
    if bytes.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let name_end = string_end(bytes, i).filter(|_| bytes.get(i) == Some(&b'"'))?;
        let name: String = serde_json::from_str(text.get(i..name_end)?).ok()?;
        i = skip_ws(name_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(i + 1);
        let end = match bytes.get(value_start)? {
            b'"' | b'{' | b'[' => value_end(text, value_start)?,
            _ => {
                let mut j = value_start;
                while bytes.get(j).is_some_and(|b| !matches!(b, b',' | b'}')) {
                    j += 1;
                }
                j
            }
        };
        members.push((name, text.get(value_start..end)?.trim_end()));
        i = skip_ws(end);
        match bytes.get(i)? {
            b',' => i = skip_ws(i + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

/// An answer's signed part: the raw response object and the signature over it.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedAnswer<'a> {
    /// The raw text of `<method>_response`, exactly as sent.
    pub content: &'a str,
    /// `sign`, base64 (empty when the answer carried none).
    pub sign: String,
}

/// Why an answer is not usable (never its body).
#[derive(Debug, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not JSON, or not an object with `<method>_response` once.
    Malformed(&'static str),
    /// The gateway's own error (`error_response`: a bad app id, signature or method).
    GatewayError { code: String, sub_code: String },
}

/// The common fields of every response object.
#[derive(Debug, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub sub_code: String,
    #[serde(default)]
    pub sub_msg: String,
}

/// Splits an answer to `method` into its signed part.
pub fn split<'a>(body: &'a str, method: &str) -> Result<SignedAnswer<'a>, BadAnswer> {
    // Valid JSON first, so the scanner below walks well-formed text only.
    serde_json::from_str::<serde::de::IgnoredAny>(body)
        .map_err(|_| BadAnswer::Malformed("not JSON"))?;
    let members = top_level_members(body).ok_or(BadAnswer::Malformed("not a JSON object"))?;
    let response_key = format!("{}_response", method.replace('.', "_"));
    let find = |key: &str| {
        let mut found = members.iter().filter(|(k, _)| k == key).map(|(_, v)| *v);
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v)),
            (Some(_), Some(_)) => Err(BadAnswer::Malformed("a member appears twice")),
        }
    };
    if let Some(error) = find("error_response")? {
        let status: Status = serde_json::from_str(error).unwrap_or_default();
        return Err(BadAnswer::GatewayError {
            code: status.code,
            sub_code: status.sub_code,
        });
    }
    let content = find(&response_key)?
        .filter(|v| v.starts_with('{'))
        .ok_or(BadAnswer::Malformed("no response object"))?;
    let sign = match find("sign")? {
        None => String::new(),
        Some(raw) => serde_json::from_str::<String>(raw)
            .map_err(|_| BadAnswer::Malformed("sign is not a string"))?,
    };
    Ok(SignedAnswer { content, sign })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matcher_skips_strings_whole() {
        let cases = [
            (r#"{}"#, r#"{}"#),
            (r#"{"a":"}"}tail"#, r#"{"a":"}"}"#),
            (r#"{"a":"{{{"}, "b":1"#, r#"{"a":"{{{"}"#),
            (r#"{"a":"say \"}\" now"}x"#, r#"{"a":"say \"}\" now"}"#),
            (
                r#"{"a":"ends in a backslash \\"},"#,
                r#"{"a":"ends in a backslash \\"}"#,
            ),
            (r#"{"a":"\\\"}"}!"#, r#"{"a":"\\\"}"}"#),
            (
                r#"{"a":{"b":[{"c":"]}"}]},"d":2}}"#,
                r#"{"a":{"b":[{"c":"]}"}]},"d":2}"#,
            ),
            (
                r#"{"中文":"支付宝}\u4e2d","e":"😀"}}"#,
                r#"{"中文":"支付宝}\u4e2d","e":"😀"}"#,
            ),
            (
                r#"{"url":"https:\/\/x\/{"}]"#,
                r#"{"url":"https:\/\/x\/{"}"#,
            ),
        ];
        for (text, object) in cases {
            assert_eq!(
                value_end(text, 0).map(|e| &text[..e]),
                Some(object),
                "{text}"
            );
        }
        for unterminated in [
            r#"{"a":"}"#,
            r#"{"a":"\"}"#,
            r#"{{}"#,
            "",
            "x",
            r#"{"a":"\"#,
        ] {
            assert_eq!(value_end(unterminated, 0), None, "{unterminated}");
        }
    }

    #[test]
    fn answers_are_split_into_the_raw_response_and_its_sign() {
        let body = r#"{ "alipay_trade_query_response" : {"code":"10000","msg":"Success","subject":"a \"}\" b","url":"https:\/\/x"} , "sign":"c2ln\/bg==", "alipay_cert_sn":null}"#;
        let answer = split(body, "alipay.trade.query").unwrap();
        assert_eq!(
            answer.content,
            r#"{"code":"10000","msg":"Success","subject":"a \"}\" b","url":"https:\/\/x"}"#
        );
        assert_eq!(answer.sign, "c2ln/bg==");

        // The sign may come first, and may be missing.
        let body = r#"{"sign":"AA==","alipay_trade_close_response":{"code":"40004"}}"#;
        assert_eq!(
            split(body, "alipay.trade.close").unwrap().content,
            r#"{"code":"40004"}"#
        );
        let body = r#"{"alipay_trade_close_response":{"code":"40004"}}"#;
        assert_eq!(split(body, "alipay.trade.close").unwrap().sign, "");
    }

    #[test]
    fn odd_answers_are_refused() {
        let gateway_error = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"},"sign":""}"#;
        assert_eq!(
            split(gateway_error, "alipay.trade.query"),
            Err(BadAnswer::GatewayError {
                code: "40002".into(),
                sub_code: "isv.invalid-app-id".into()
            })
        );
        for bad in [
            "",
            "<html>",
            "[]",
            r#"{"alipay_trade_query_response":{"code":"10000"}"#,
            r#"{"alipay_trade_refund_response":{"code":"10000"},"sign":"AA=="}"#,
            r#"{"alipay_trade_query_response":"{\"code\":\"10000\"}","sign":"AA=="}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{"code":"10000"},"sign":"AA=="}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"},"sign":5}"#,
            // The key inside another member's string is not the member.
            r#"{"x":"\"alipay_trade_query_response\":{\"code\":\"10000\"}","sign":"AA=="}"#,
        ] {
            assert!(
                matches!(
                    split(bad, "alipay.trade.query"),
                    Err(BadAnswer::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn top_level_members_keep_raw_values() {
        let members =
            top_level_members(r#" {"a" : 1 , "b":[1,"]"], "c\"d":"x\"", "e":{} } "#).unwrap();
        let raw: Vec<(&str, &str)> = members.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            raw,
            [
                ("a", "1"),
                ("b", r#"[1,"]"]"#),
                ("c\"d", r#""x\"""#),
                ("e", "{}")
            ]
        );
        assert_eq!(top_level_members("{}").unwrap(), vec![]);
    }
}

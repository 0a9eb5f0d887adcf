//! The results as Markdown tables (what the README quotes) from the JSON document.

use serde_json::Value;

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f:.2}"),
        None => v.as_str().unwrap_or("–").to_owned(),
    }
}

fn list(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if items.is_empty() {
        "–".into()
    } else {
        items.join(", ")
    }
}

fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Each function against its variants: what reading secrets at run time adds to a first
/// invocation, and what the system's roots (the China regions) add to init.
fn secrets_table(line: &mut impl FnMut(String), lambda: &Value) {
    let binaries: Vec<&Value> = rows(&lambda["binaries"]).collect();
    let variant = |b: &Value, label: &str| {
        binaries
            .iter()
            .find(|v| v["binary"] == b["binary"] && v["variant"].as_str() == Some(label))
            .copied()
    };
    let functions: Vec<&Value> = binaries
        .iter()
        .filter(|b| !b["function"].is_null() && b["variant"].is_null())
        .copied()
        .collect();
    if functions.is_empty() {
        return;
    }
    line(String::new());
    line("**Secrets and TLS roots at a cold start** (the same binaries, medians of the same cold starts: first invocation reading the secrets from the Secrets Manager stand-in, as deployed, against the secrets' values in the environment; init with the compiled-in Amazon roots, us-east-1, against the system's roots, cn-north-1):".into());
    line(String::new());
    line("| binary | first invocation ms, secrets from Secrets Manager | first invocation ms, secrets in env | added ms | init ms, Amazon roots | init ms, system roots (cn-north-1) | added ms |".into());
    line("|---|---:|---:|---:|---:|---:|---:|".into());
    let diff = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => format!("{:.2}", a - b),
        _ => "–".into(),
    };
    for b in functions {
        let env = variant(b, crate::lambda::SECRETS_IN_ENV);
        let cn = variant(b, crate::lambda::CHINA_REGION);
        let env_first = env
            .map(|v| v["first_invocation_ms"].clone())
            .unwrap_or_default();
        let cn_init = cn.map(|v| v["init_ms"].clone()).unwrap_or_default();
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            b["binary"].as_str().unwrap_or(""),
            num(&b["first_invocation_ms"]),
            num(&env_first),
            diff(&b["first_invocation_ms"], &env_first),
            num(&b["init_ms"]),
            num(&cn_init),
            diff(&cn_init, &b["init_ms"]),
        ));
    }
}

pub fn markdown(doc: &Value) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "Renji benchmark, {} — `{}` on {} ({} cores), {}.",
        doc["date"].as_str().unwrap_or(""),
        doc["command"].as_str().unwrap_or(""),
        doc["machine"]["cpu"].as_str().unwrap_or("?"),
        num(&doc["machine"]["cores"]),
        doc["rustc"].as_str().unwrap_or("")
    ));
    let lambda = &doc["lambda"];
    line(String::new());
    line(format!(
        "**Lambda binaries** (release profile; ×hello = ratio to the bare lambda_http `hello` built and measured in the same run; init and first invocation: median of {} cold starts; warm: {} invocations per route against DynamoDB Local):",
        num(&lambda["cold_starts"]),
        num(&lambda["warm_invocations"])
    ));
    line(String::new());
    line("| binary | init ms | ×hello | first invocation ms | ×hello | peak RSS MB | ×hello | binary MB | ×hello | zip MB | ×hello |".into());
    line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    for b in rows(&lambda["binaries"]).filter(|b| b["variant"].is_null()) {
        let r = &b["ratio_to_hello"];
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            b["binary"].as_str().unwrap_or(""),
            num(&b["init_ms"]),
            num(&r["init"]),
            num(&b["first_invocation_ms"]),
            num(&r["first_invocation"]),
            num(&b["peak_rss_mb"]),
            num(&r["peak_rss"]),
            num(&b["binary_mb"]),
            num(&r["binary"]),
            num(&b["zip_mb"]),
            num(&r["zip"]),
        ));
    }
    secrets_table(&mut line, lambda);
    line(String::new());
    line("**Warm latency per route** (event handed out → response received, through the Runtime API stand-in):".into());
    line(String::new());
    line("| binary | route | p50 ms | p99 ms | p50 ×hello |".into());
    line("|---|---|---:|---:|---:|".into());
    for b in rows(&lambda["binaries"]) {
        for w in rows(&b["warm"]) {
            let route = w["route"].as_str().unwrap_or("");
            let route = if b["function"].is_null() {
                format!("{route}'s event, answered \"hello\"")
            } else {
                route.to_owned()
            };
            line(format!(
                "| {} | {} | {} | {} | {} |",
                b["binary"].as_str().unwrap_or(""),
                route,
                num(&w["p50_ms"]),
                num(&w["p99_ms"]),
                num(&w["p50_ratio_to_hello"]),
            ));
        }
    }
    line(String::new());
    line("**DynamoDB requests per route** (the route's call through its handler; requests counted by an SDK interceptor on DynamoDB Local, port calls by a counting decorator on each store; target: a GET reads one object, a state-changing call makes one transaction or one conditional write plus the reads it needs):".into());
    line(String::new());
    line("| route | call | DynamoDB Local requests | embedded store port calls | reads | writes | target | why |".into());
    line("|---|---|---|---|---:|---:|---|---|".into());
    for r in rows(&doc["store_requests"]) {
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r["route"].as_str().unwrap_or(""),
            r["call"].as_str().unwrap_or(""),
            list(&r["dynamodb_requests"]),
            list(&r["embedded_port_calls"]),
            num(&r["reads"]),
            num(&r["writes"]),
            if r["within_target"] == true {
                "met"
            } else {
                "above"
            },
            r["why"].as_str().unwrap_or(""),
        ));
    }
    let nearby = &doc["nearby"];
    if !nearby.is_null() {
        line(String::new());
        line(format!(
            "**Nearby in a dense city** ({} listings around Beijing's centre, 200 of them at one building; `GET /v1/listings?near=…&radius_km=R`, {} results a page, paged to the end; store queries and index entries read per request, counted on the storage port; budget per request: {} queries, {} entries):",
            num(&nearby["listings"]),
            num(&nearby["limit"]),
            num(&nearby["budget"]["queries"]),
            num(&nearby["budget"]["items"]),
        ));
        line(String::new());
        line("| store | radius km | results | pages | first page: queries | entries | per page: mean queries | mean entries | max queries | max entries | longest cursor |".into());
        line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into());
        for r in rows(&nearby["rows"]) {
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["store"].as_str().unwrap_or(""),
                num(&r["radius_km"]),
                num(&r["results"]),
                num(&r["pages"]),
                num(&r["first_page_queries"]),
                num(&r["first_page_items"]),
                num(&r["mean_queries"]),
                num(&r["mean_items"]),
                num(&r["max_queries"]),
                num(&r["max_items"]),
                num(&r["longest_cursor"]),
            ));
        }
    }
    line(String::new());
    line("**Handler CPU time per warm request** (thread CPU time of parsing the event and running the handler, in-process over a zero-latency in-memory store, so no store I/O):".into());
    line(String::new());
    line("| route | call | p50 µs | p99 µs | iterations | note |".into());
    line("|---|---|---:|---:|---:|---|".into());
    for r in rows(&doc["handler_cpu"]) {
        line(format!(
            "| {} | {} | {} | {} | {} | {} |",
            r["route"].as_str().unwrap_or(""),
            r["call"].as_str().unwrap_or(""),
            num(&r["p50_us"]),
            num(&r["p99_us"]),
            num(&r["iterations"]),
            r["note"].as_str().unwrap_or(""),
        ));
    }
    line(String::new());
    line("**Rate limiter per limited call** (`ratelimit::check` as a function runs it before the handler: the token's signature, then one conditional UpdateItem of the client's window counter; in-process):".into());
    line(String::new());
    line("| store | call | p50 ms | p99 ms | iterations |".into());
    line("|---|---|---:|---:|---:|".into());
    for r in rows(&doc["rate_limiter"]) {
        line(format!(
            "| {} | {} | {} | {} | {} |",
            r["store"].as_str().unwrap_or(""),
            r["call"].as_str().unwrap_or(""),
            num(&r["p50_ms"]),
            num(&r["p99_ms"]),
            num(&r["iterations"]),
        ));
    }
    line(String::new());
    line("**Local API throughput** (release `renji-local` on the embedded store, `wrk` on loopback):".into());
    line(String::new());
    line("| route | requests/s | p50 ms | p99 ms | load |".into());
    line("|---|---:|---:|---:|---|".into());
    for r in rows(&doc["local_api"]) {
        if let Some(skipped) = r["skipped"].as_str() {
            line(format!(
                "| {} | – | – | – | skipped: {skipped} |",
                r["route"].as_str().unwrap_or("")
            ));
            continue;
        }
        line(format!(
            "| {} | {} | {} | {} | {} threads, {} connections, {} s |",
            r["route"].as_str().unwrap_or(""),
            num(&r["requests_per_sec"]),
            num(&r["p50_ms"]),
            num(&r["p99_ms"]),
            num(&r["threads"]),
            num(&r["connections"]),
            num(&r["seconds"]),
        ));
    }
    line(String::new());
    line("**Targets:**".into());
    line(String::new());
    line("| target | worst | met |".into());
    line("|---|---|---|".into());
    for t in rows(&doc["targets"]) {
        line(format!(
            "| {} | {} | {} |",
            t["target"].as_str().unwrap_or(""),
            t["worst"].as_str().unwrap_or(""),
            if t["met"] == true { "yes" } else { "**no**" },
        ));
    }
    out
}

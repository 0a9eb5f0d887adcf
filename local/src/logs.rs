//! The local server's log format. On a terminal: one human-readable line per event (UTC time,
//! level, and for a request its status, route and duration); anywhere else — a file, a pipe, the
//! contract step's log — the JSON lines Lambda writes (`renji_shared::logging`), so tools read
//! both the same way. `--log-format text|json|auto` or `RENJI_LOG_FORMAT` chooses (`auto`, the
//! default, picks by whether stdout is a terminal); `NO_COLOR` turns the text's colours off.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// `text`, `json`, or `auto`/unset: text when stdout is a terminal.
pub fn choose(value: Option<&str>) -> Result<Format, String> {
    match value.map(str::trim).unwrap_or("auto") {
        "json" => Ok(Format::Json),
        "text" => Ok(Format::Text),
        "auto" | "" => Ok(if std::io::stdout().is_terminal() {
            Format::Text
        } else {
            Format::Json
        }),
        other => Err(format!("the log format is text, json or auto, not {other}")),
    }
}

/// Installs the subscriber for `format`, the level from `RUST_LOG` (default `info`).
pub fn init(format: Format) {
    match format {
        Format::Json => renji_shared::logging::init(),
        Format::Text => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let filter =
                renji_shared::logging::filter_from(std::env::var("RUST_LOG").ok().as_deref());
            let _ = tracing_subscriber::registry()
                .with(SpanFields)
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(Human { color })
                        .with_writer(std::io::stdout),
                )
                .with(filter)
                .try_init();
        }
    }
}

/// A request span's route and request id (`renji_shared::http::respond`), kept for its events.
#[derive(Default)]
struct SpanInfo {
    route: Option<String>,
    request_id: Option<String>,
}

struct SpanFields;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let mut info = SpanInfo::default();
        for (name, value) in fields.pairs {
            match name {
                "route" => info.route = Some(value),
                "request_id" => info.request_id = Some(value),
                _ => {}
            }
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(info);
        }
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.pairs.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.pairs.push((field.name(), text));
        }
    }
}

struct Human {
    color: bool,
}

impl Human {
    fn paint(&self, out: &mut String, code: &str, text: &str) {
        if self.color {
            let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (route, request_id) = ctx
            .lookup_current()
            .and_then(|span| {
                span.scope().find_map(|s| {
                    s.extensions()
                        .get::<SpanInfo>()
                        .map(|i| (i.route.clone(), i.request_id.clone()))
                })
            })
            .unwrap_or((None, None));
        writer.write_str(&line(
            self,
            *event.metadata().level(),
            fields,
            route,
            request_id,
        ))?;
        writer.write_char('\n')
    }
}

fn line(
    human: &Human,
    level: Level,
    mut fields: Fields,
    route: Option<String>,
    request_id: Option<String>,
) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut out = format!(
        "{:02}:{:02}:{:02}.{:03} ",
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
    let level_color = match level {
        Level::ERROR => "31;1",
        Level::WARN => "33;1",
        Level::INFO => "32",
        _ => "2",
    };
    human.paint(&mut out, level_color, &format!("{:<5}", level.as_str()));
    out.push(' ');
    let take = |fields: &mut Fields, name: &str| {
        let at = fields.pairs.iter().position(|(n, _)| *n == name)?;
        Some(fields.pairs.remove(at).1)
    };
    let status = take(&mut fields, "status");
    let micros = take(&mut fields, "micros").and_then(|m| m.parse::<u64>().ok());
    match (status, micros) {
        // A request's closing line: `200 GET /v1/me 3.2 ms`.
        (Some(status), Some(micros)) if fields.message.as_deref() == Some("request done") => {
            let color = match status.as_bytes().first() {
                Some(b'2') | Some(b'3') => "32",
                Some(b'4') => "33",
                _ => "31;1",
            };
            human.paint(&mut out, color, &status);
            let _ = write!(
                out,
                " {} {:.1} ms",
                route.as_deref().unwrap_or("-"),
                micros as f64 / 1000.0
            );
        }
        (status, micros) => {
            out.push_str(fields.message.as_deref().unwrap_or(""));
            if let Some(status) = status {
                fields.pairs.push(("status", status));
            }
            if let Some(micros) = micros {
                fields.pairs.push(("micros", micros.to_string()));
            }
            if let Some(route) = route {
                fields.pairs.push(("route", route));
            }
        }
    }
    for (name, value) in &fields.pairs {
        let _ = write!(out, " ");
        human.paint(&mut out, "2", &format!("{name}="));
        out.push_str(value);
    }
    if let Some(id) = request_id.filter(|id| id != "-") {
        out.push(' ');
        human.paint(&mut out, "2", &format!("[{id}]"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, pairs: &[(&'static str, &str)]) -> Fields {
        Fields {
            message: Some(message.into()),
            pairs: pairs.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn a_request_reads_as_status_route_duration() {
        let plain = Human { color: false };
        let text = line(
            &plain,
            Level::INFO,
            fields("request done", &[("status", "201"), ("micros", "3456")]),
            Some("POST /v1/orders".into()),
            Some("01JREQ".into()),
        );
        // `HH:MM:SS.mmm INFO  201 POST /v1/orders 3.5 ms [01JREQ]`
        assert_eq!(&text[2..3], ":");
        assert!(
            text[13..].starts_with("INFO  201 POST /v1/orders 3.5 ms [01JREQ]"),
            "{text}"
        );
        let other = line(
            &plain,
            Level::WARN,
            fields("scheduled job failed", &[("job", "order-jobs")]),
            None,
            None,
        );
        assert!(
            other[13..].starts_with("WARN  scheduled job failed job=order-jobs"),
            "{other}"
        );
    }

    #[test]
    fn the_format_is_chosen_or_follows_the_terminal() {
        assert_eq!(choose(Some("json")), Ok(Format::Json));
        assert_eq!(choose(Some("text")), Ok(Format::Text));
        assert!(choose(Some("yaml")).is_err());
        assert!(choose(None).is_ok());
    }
}

//! The page shell: head, navigation, the logged-in identity, logout.

use maud::{html, Markup, DOCTYPE};
use superserver_core::Caller;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Sandboxes,
    Usage,
    Settings,
    Alerts,
    Services,
    Anomalies,
    Egress,
    Secrets,
}

/// A whole page around `body`.
pub(crate) fn page(title: &str, nav: Nav, caller: &Caller, csrf: &str, body: Markup) -> Markup {
    refreshing(title, nav, caller, csrf, Live::No, body)
}

/// How a page stays current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    /// It does not.
    No,
    /// It reloads every so many seconds while visible and not typed into.
    Every(u32),
    /// The host's services' changes are pushed (server-sent events) and the
    /// page's content is re-fetched when one arrives.
    Services,
    /// Approvals are pushed (the page is re-fetched when one changes) and
    /// egress events stream into the events table.
    Egress,
}

/// A whole page that keeps itself current.
pub(crate) fn refreshing(title: &str, nav: Nav, caller: &Caller, csrf: &str, live: Live, body: Markup) -> Markup {
    let refresh = match live {
        Live::Every(s) => Some(s),
        _ => None,
    };
    let pushed = match live {
        Live::Services => Some("services"),
        Live::Egress => Some("egress"),
        _ => None,
    };
    let admin = caller.is_admin();
    let link = |n: Nav, href: &str, label: &str| {
        html! { a href=(href) aria-current=[(n == nav).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · SuperServer" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-refresh=[refresh] data-live=[pushed] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "SuperServer" }
                    nav aria-label="Main" {
                        (link(Nav::Overview, "/", "Overview"))
                        (link(Nav::Sandboxes, "/sandboxes", "Sandboxes"))
                        (link(Nav::Usage, "/usage", "Usage"))
                        (link(Nav::Egress, "/egress", "Egress"))
                        (link(Nav::Secrets, "/secrets", "Secrets"))
                        @if admin {
                            (link(Nav::Services, "/services", "Services"))
                            (link(Nav::Alerts, "/alerts", "Alerts"))
                            (link(Nav::Anomalies, "/anomalies", "Anomalies"))
                        }
                        @if caller.role >= superserver_wire::Role::Owner {
                            (link(Nav::Settings, "/settings", "Settings"))
                        }
                    }
                    div.who {
                        span title="Tenant and role of the key you logged in with" {
                            (caller.tenant.name) " · " (format!("{:?}", caller.role).to_lowercase())
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page outside a session (login, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · SuperServer" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body.bare { main #main { (body) } }
        }
    }
}

/// "3 min ago"-style relative time, with the exact UTC time as a tooltip.
pub(crate) fn ago(ms: i64, now_ms: i64) -> Markup {
    let secs = ((now_ms - ms) / 1000).max(0);
    let text = match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    };
    html! { time datetime=(utc(ms)) title=(utc(ms)) { (text) } }
}

/// RFC 3339 UTC time.
pub(crate) fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A health (or state) badge; the class comes from a fixed set, never from the input.
pub(crate) fn badge(status: &str) -> Markup {
    let class = match status {
        "healthy" | "running" | "active" => "ok",
        "starting" | "restarting" | "activating" | "created" => "warn",
        "unhealthy" | "failed" | "dead" => "bad",
        _ => "off",
    };
    html! { span class={"badge " (class)} { (status) } }
}

/// Nothing yet: what it means and what to do.
pub(crate) fn empty(what: &str, next: Markup) -> Markup {
    html! { div.empty { p { strong { (what) } } p { (next) } } }
}

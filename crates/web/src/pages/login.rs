//! Logging in with an API key, and out.

use axum::extract::{Form, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout;
use superserver_core::sessions::{random_token as token, same_token as same, MAX_AGE, SESSION_COOKIE as COOKIE_NAME};

use crate::session::{cookie, remote, Page, LOGIN_COOKIE};
use crate::WebState;

fn render(csrf: &str, error: Option<&str>) -> Markup {
    layout::bare(
        "Log in",
        html! {
            div.login {
                h1 { "SuperServer" }
                p { "Log in with an API key. A new server printed its admin key once at start and wrote it to "
                    code { "DATA_DIR/admin.key" } "; " code { "superserver keys create" } " makes more." }
                @if let Some(e) = error {
                    p.error role="alert" { (e) }
                }
                form method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="key" { "API key" }
                    input #key type="password" name="key" autocomplete="off" required placeholder="ssk_…" autofocus;
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

fn login_cookie(t: &str) -> String {
    format!("{LOGIN_COOKIE}={t}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=900")
}

/// `GET /login`: the form, with a fresh double-submit token.
pub(crate) async fn form() -> Response {
    let t = token();
    ([(SET_COOKIE, login_cookie(&t))], Html(render(&t, None).into_string())).into_response()
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
    csrf: String,
}

/// `POST /login`: the double-submitted token must match; the key must authenticate.
pub(crate) async fn submit(State(st): State<WebState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let presented = cookie(&parts, LOGIN_COOKIE).map(str::to_string);
    let from = remote(&parts);
    let req = axum::extract::Request::from_parts(parts, body);
    let Form(f) = match <Form<LoginForm> as axum::extract::FromRequest<WebState>>::from_request(req, &st).await {
        Ok(f) => f,
        Err(_) => return (StatusCode::BAD_REQUEST, "The login form was incomplete.").into_response(),
    };
    let retry = |status: StatusCode, msg: &str| {
        let t = token();
        (status, [(SET_COOKIE, login_cookie(&t))], Html(render(&t, Some(msg)).into_string())).into_response()
    };
    if !presented.as_deref().is_some_and(|p| same(p, &f.csrf)) {
        return retry(StatusCode::FORBIDDEN, "The login form expired. Enter the key again.");
    }
    let key = f.key.trim();
    match st.svc.login(key, from) {
        Ok(id) => {
            let session =
                format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", MAX_AGE.as_secs());
            let clear = format!("{LOGIN_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0");
            let mut res = (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
            for c in [session, clear] {
                if let Ok(v) = c.parse() {
                    res.headers_mut().append(SET_COOKIE, v);
                }
            }
            res
        }
        Err(e) => retry(StatusCode::UNAUTHORIZED, &format!("That key was refused: {e}")),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// `POST /logout`.
pub(crate) async fn logout(State(st): State<WebState>, page: Page, Form(f): Form<LogoutForm>) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    st.svc.logout(&page.session);
    (
        StatusCode::SEE_OTHER,
        [
            (LOCATION, "/login".to_string()),
            (SET_COOKIE, format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")),
        ],
    )
        .into_response()
}

//! HTTP routes: the Calendar API, the token endpoint and the admin API.
//! Every Calendar API call passes through `gate` first; the handlers are in
//! `calendar` (Calendar API), `token` (OAuth) and `admin` (the emulator's
//! own controls).

mod admin;
mod calendar;
mod gate;
mod token;
mod user_oauth;

use actix_web::{HttpResponse, web};

use crate::Inner;
use crate::error::ApiError;

type Data = web::Data<Inner>;
type Reply = Result<HttpResponse, ApiError>;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/token", web::post().to(token::token))
        .route("/o/oauth2/v2/auth", web::get().to(user_oauth::authorize))
        .route("/revoke", web::post().to(user_oauth::revoke))
        .route("/oauth2/v3/userinfo", web::get().to(user_oauth::userinfo))
        .service(
            web::scope("/calendar/v3")
                .route(
                    "/calendars/{calendar}",
                    web::get().to(calendar::calendar_get),
                )
                .route(
                    "/calendars/{calendar}/events/watch",
                    web::post().to(calendar::watch),
                )
                .route(
                    "/calendars/{calendar}/events",
                    web::get().to(calendar::list),
                )
                .route(
                    "/calendars/{calendar}/events",
                    web::post().to(calendar::insert),
                )
                .route(
                    "/calendars/{calendar}/events/{event}/instances",
                    web::get().to(calendar::instances),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::get().to(calendar::get),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::patch().to(calendar::patch),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::put().to(calendar::update),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::delete().to(calendar::delete),
                )
                .route("/channels/stop", web::post().to(calendar::stop))
                .route(
                    "/users/me/calendarList",
                    web::get().to(calendar::calendar_list),
                )
                .route("/freeBusy", web::post().to(calendar::free_busy)),
        )
        .service(
            web::scope("/emulator")
                .route("/calendars/{calendar}/seed", web::post().to(admin::seed))
                .route(
                    "/calendars/{calendar}/changes",
                    web::post().to(admin::changes),
                )
                .route("/calendars/{calendar}/events", web::get().to(admin::events))
                .route(
                    "/calendars/{calendar}/access",
                    web::post().to(admin::access),
                )
                .route(
                    "/calendars/{calendar}/roles",
                    web::put().to(admin::set_role),
                )
                .route("/deleted-events", web::put().to(admin::set_purge))
                .route("/pages", web::put().to(admin::set_pages))
                .route("/faults", web::put().to(admin::set_faults))
                .route("/quotas", web::put().to(admin::set_quotas))
                .route("/faults", web::delete().to(admin::clear_faults))
                .route("/sync-tokens/invalidate", web::post().to(admin::invalidate))
                .route("/stats", web::get().to(admin::stats))
                .route("/oauth/clients", web::post().to(admin::register_client))
                .route(
                    "/oauth/accounts/{account}/revoke",
                    web::post().to(admin::revoke_account),
                )
                .route(
                    "/oauth/refresh-tokens",
                    web::get().to(admin::refresh_tokens),
                )
                .route(
                    "/oauth/access-token-lifetime",
                    web::put().to(admin::set_access_lifetime),
                )
                .route("/oauth/deny", web::post().to(admin::deny))
                .route(
                    "/users/{account}/calendars/{calendar}",
                    web::put().to(admin::create_user_calendar),
                )
                .route(
                    "/calendars/{calendar}/shares/{account}",
                    web::put().to(admin::share),
                )
                .route(
                    "/calendars/{calendar}/shares/{account}",
                    web::delete().to(admin::unshare),
                )
                .route(
                    "/users/{account}/calendar-list/{calendar}",
                    web::put().to(admin::list_entry),
                )
                .route(
                    "/users/{account}/calendar-list/{calendar}",
                    web::delete().to(admin::remove_list_entry),
                )
                .route(
                    "/users/{account}/calendar-list",
                    web::get().to(admin::calendar_list),
                ),
        );
}

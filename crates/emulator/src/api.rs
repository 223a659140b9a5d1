//! HTTP routes: the Calendar API, the token endpoint and the admin API.
//! Every Calendar API call passes through `gate` first; the handlers are in
//! `calendar` (Calendar API), `token` (OAuth) and `admin` (the emulator's
//! own controls).

mod admin;
mod calendar;
mod gate;
mod token;

use actix_web::{HttpResponse, web};

use crate::Inner;
use crate::error::ApiError;

type Data = web::Data<Inner>;
type Reply = Result<HttpResponse, ApiError>;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/token", web::post().to(token::token))
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
                .route("/stats", web::get().to(admin::stats)),
        );
}

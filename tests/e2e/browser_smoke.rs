//! The browser harness against pages the server has today: the API page
//! (`/docs`, drawn by Swagger UI's scripts from `/openapi.json`), and a form
//! on the server's origin; the console's browser tests build on the same.

use std::path::Path;
use std::time::Duration;

use crate::browser::{Browser, BrowserError, artifacts_dir, processes_naming};
use crate::events_api::Api;

/// The operations `/openapi.json` lists, counted in the page's own script.
const OPERATIONS: &str = "fetch('/openapi.json').then(r => r.json()).then(doc => \
     Object.values(doc.paths).flatMap(item => Object.keys(item)).filter(key => \
     ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'].includes(key)).length)";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_page_renders_and_is_saved_as_a_screenshot() {
    let Some(browser) = Browser::for_test("browser_smoke::api_page").await else {
        return;
    };
    let api = Api::sqlite().await;
    let base = format!("http://{}", api.running.address);

    let page = browser.new_page(&format!("{base}/docs")).await.unwrap();
    assert_eq!(page.status().await.unwrap(), 200);
    assert_eq!(page.url().await.unwrap(), format!("{base}/docs"));
    // Swagger UI draws the page from /openapi.json: its title there means
    // the bundle's scripts ran and fetched the document.
    page.wait_for(".swagger-ui .info .title").await.unwrap();
    let title = page.text(".swagger-ui .info .title").await.unwrap();
    assert!(title.starts_with("calsync"), "{title}");
    assert_eq!(
        page.attr("base", "href").await.unwrap().as_deref(),
        Some("/docs/")
    );

    // One block per operation the document lists (each has one tag).
    let listed = page.eval(OPERATIONS).await.unwrap().as_u64().unwrap();
    assert!(listed > 20, "{listed}");
    let shown = page.count(".opblock").await.unwrap();
    assert_eq!(shown as u64, listed);

    // A real click expands an operation in place.
    assert_eq!(page.count(".opblock.is-open").await.unwrap(), 0);
    page.click_in_page(".opblock .opblock-summary")
        .await
        .unwrap();
    page.wait_for(".opblock.is-open").await.unwrap();

    let path = artifacts_dir().join("smoke-api-docs.png");
    let _ = std::fs::remove_file(&path);
    let png = page.screenshot(&path).await.unwrap();
    let (width, height) = png_size(&path);
    assert_eq!(std::fs::read(&path).unwrap(), png);
    assert_eq!(width, 1280);
    // The whole page, not only the 900-pixel window.
    assert!(height > 900, "{height}");

    browser.close().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_form_is_filled_posted_and_followed_and_errors_are_clear() {
    let Some(browser) = Browser::for_test("browser_smoke::form").await else {
        return;
    };
    let api = Api::sqlite().await;
    let base = format!("http://{}", api.running.address);

    // A form on the server's origin, as the console's login will be.
    let page = browser
        .new_page(&format!("{base}/openapi.json"))
        .await
        .unwrap();
    page.eval(
        "document.body.innerHTML = '<form method=get action=/docs>\
         <input name=token><button id=go>Go</button></form>'; \
         document.cookie = 'probe=1; SameSite=Strict; Path=/'",
    )
    .await
    .unwrap();
    page.fill("input[name=token]", "a b&c").await.unwrap();
    assert_eq!(
        page.eval("document.querySelector('input').value")
            .await
            .unwrap(),
        "a b&c"
    );
    page.click("#go").await.unwrap();
    assert_eq!(
        page.url().await.unwrap(),
        format!("{base}/docs?token=a+b%26c")
    );
    assert_eq!(page.status().await.unwrap(), 200);
    page.wait_for(".swagger-ui .info .title").await.unwrap();

    let cookies = page.cookies().await.unwrap();
    let probe = cookies.iter().find(|c| c.name == "probe").unwrap();
    assert_eq!(probe.value, "1");
    assert_eq!(probe.same_site.as_deref(), Some("Strict"));
    assert!(!probe.http_only && probe.session);

    // Failures name what went wrong instead of hanging.
    match page.text("#nothing-here").await {
        Err(BrowserError::NoElement { selector }) => assert_eq!(selector, "#nothing-here"),
        other => panic!("{other:?}"),
    }
    match page.click("#nothing-here").await {
        Err(BrowserError::NoElement { .. }) => {}
        other => panic!("{other:?}"),
    }
    match page.eval("null.x").await {
        Err(BrowserError::Script { message, .. }) => assert!(message.contains("TypeError")),
        other => panic!("{other:?}"),
    }
    let mut impatient = page.clone();
    impatient.set_step_timeout(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let error = impatient.wait_for("#never").await.unwrap_err();
    assert!(matches!(error, BrowserError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("wait for `#never`"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let path = artifacts_dir().join("smoke-form-followed.png");
    page.screenshot(&path).await.unwrap();
    assert_eq!(png_size(&path).0, 1280);

    browser.close().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_browser_leaves_no_process_behind() {
    let Some(browser) = Browser::for_test("browser_smoke::drop").await else {
        return;
    };
    let page = browser.new_page("about:blank").await.unwrap();
    assert_eq!(page.eval("1 + 2").await.unwrap(), 3);
    let profile = browser.profile_dir().to_string_lossy().into_owned();
    assert!(
        !processes_naming(&profile).is_empty(),
        "no Chromium found by its profile"
    );
    // As when a test panics: no close, only the drop, which returns once
    // every process of the browser is gone.
    drop(browser);
    let left = processes_naming(&profile);
    assert!(left.is_empty(), "still running: {left:?}");
    assert!(
        !Path::new(&profile).exists(),
        "profile {profile} left behind"
    );
}

/// The size in a PNG file's header, after checking it is one.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 1000, "{} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

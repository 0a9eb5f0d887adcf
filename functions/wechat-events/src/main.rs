#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    renji_shared::app::run_lambda(renji_wechat_events::handle).await
}

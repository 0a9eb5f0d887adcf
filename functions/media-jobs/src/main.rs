#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    renji_shared::app::run_job(renji_media_jobs::run).await
}

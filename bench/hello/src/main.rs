//! A bare lambda_http function: the baseline every function's figures are divided by. It is
//! built and run exactly as the functions are (same profile, same lambda_http loop shape).

use std::convert::Infallible;

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        let mut response = Response::new(Body::from("hello"));
        response.headers_mut().insert(
            "content-type",
            "text/plain".parse().expect("a valid header"),
        );
        Ok::<_, Infallible>(response)
    }))
    .await
}

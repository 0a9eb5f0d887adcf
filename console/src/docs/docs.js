// The interactive reference of openapi.yaml, served by the local server beside this page. "Try it
// out" calls the server this page came from, whatever its port (the spec names the default one).
const specServer = "http://127.0.0.1:3000";
window.ui = SwaggerUIBundle({
  url: "./openapi.yaml",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  requestInterceptor: (request) => {
    if (request.url.startsWith(specServer + "/")) {
      request.url = location.origin + request.url.slice(specServer.length);
    }
    return request;
  },
});

// GET /docs: Swagger UI (served from this Worker's assets) over /openapi.json.
declare const SwaggerUIBundle: (options: Record<string, unknown>) => unknown;

SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  // Swagger UI otherwise sends the document to validator.swagger.io: nothing leaves this origin.
  validatorUrl: null,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
});

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: {{ spec_url|tojson }},
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});

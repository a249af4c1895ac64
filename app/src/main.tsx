// Entry point: load config.json and the deployment file next to the app, then render the dashboard.
import { render } from "preact";

import { loadConfig } from "./data/config.js";
import { App } from "./ui/app.js";

const root = document.getElementById("app");
if (root !== null) {
  loadConfig(location.href, location.search).then(
    ({ config, deployment }) => {
      root.textContent = "";
      render(<App config={config} deployment={deployment} />, root);
    },
    (error: unknown) => {
      root.innerHTML = "";
      const p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = `The dashboard could not start: ${(error as Error).message}`;
      root.append(p);
    },
  );
}

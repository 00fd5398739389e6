// Loads the app (no inline script: the Content-Security-Policy allows only our own files).
import init from "/ducha.js";
init({ module_or_path: "/ducha_bg.wasm" });

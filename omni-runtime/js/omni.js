// omni.js: the browser client (being written).
export {};

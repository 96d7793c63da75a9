// omni.js clears timers it may not have set (`clearTimeout(null)`), which the platform
// ignores as it ignores any id it does not know; lib.dom's declaration takes no null.
declare function clearTimeout(id: number | null | undefined): void;

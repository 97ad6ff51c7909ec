import native from "./index.js";

export const { Store } = native;
export default native;

export * from "./fields.js";
export * from "./train.js";
export * from "./eval.js";
export * from "./resume.js";
export * from "./benchmark.js";
export * from "./hessian.js";
export * from "./data-dir.js";
export { parseConfig, formatIssues } from "./parse.js";
export { describeFields, type FieldInfo, type FieldKind } from "./describe.js";

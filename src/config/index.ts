/**
 * Configuration (L3): YAML -> validated, defaulted, frozen config objects, with every
 * error reported as `FILE:LINE:COL: PATH: MESSAGE` (architecture.md, field reports BC-33, BC-35).
 */
export { ConfigError, formatConfigError, formatIssue, formatPath, isConfigError } from './issues.js';
export type { ConfigIssue, ConfigErrorCode } from './issues.js';
export { applySchemaDefaults, loadYamlFile, parseYamlText } from './load-yaml.js';
export type { JsonSchema, LoadedYaml, LoadYamlOptions, PathSegments, Position } from './load-yaml.js';
export { checkSecretFiles, defaultPolicy, gatewaySchema, loadGatewayConfig } from './gateway.js';
export type { GatewayConfig, LoadGatewayOptions, PeerConfig, Policy } from './gateway.js';
export { isInitiator } from './gateway-rules.js';
export { checkSimulatorSecretFiles, loadSimulatorConfig, readSimulatorPems, simulatorSchema } from './simulator.js';
export type { LoadSimulatorOptions, SimulatorConfig, SimulatorKmeConfig } from './simulator.js';
export { checkKeyFileModes, type ConfigFile, type KeyFileOptions } from './files.js';
export { formatHostPort, MAX_DURATION_MS, parseDuration, parseHostPort, parseSize } from './units.js';
export type { HostPort, Parsed } from './units.js';
export { schemaPath } from './schemas.js';

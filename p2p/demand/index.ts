// Buyer demands on the gossip topic /sdte/bdbc/1 (docs/trade.md step 2).
export { DEMAND_TOPIC, MAX_DEMAND_BYTES, MAX_DEMAND_TTL_SECONDS, MAX_DEMAND_NODES, MAX_DEMAND_SELLERS, MAX_DEMANDS_PER_BUYER, DEMAND_RATE_WINDOW_SECONDS } from './constants.ts'
export { DemandSchema, DEMAND_TAG, TAG_PATTERN, demandHashOf, signDemand, encodeDemand, decodeDemand, verifyDemandSignature, DemandInvalidError, DEMAND_VERDICTS } from './demand.ts'
export type { Demand, DemandTerms, DemandInvalidReason } from './demand.ts'
export { createDemandValidator } from './validator.ts'
export { createPostedDemands } from './posted.ts'
export type { PostedDemands, PostedDemandsOptions } from './posted.ts'
export type { DemandValidator, DemandValidatorOptions, DemandValidatorComponents } from './validator.ts'

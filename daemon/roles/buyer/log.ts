// The buyer's logger, one home for every file of the role.
import { logger } from '../../log.ts'

export const log = logger('sdte:buyer')

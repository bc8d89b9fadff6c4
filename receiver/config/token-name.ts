import { z } from 'zod';

/**
 * A name a secret is stored under in the token file or SSM (`<prefix>/<name>`): a trigger's
 * token, a notification's signing token, a deploy key.
 */
export const tokenNameSchema = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9_.\-/@]+$/, 'may hold letters, digits and _ . - / @');

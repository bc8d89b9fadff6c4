/**
 * The version `triggler --version` prints: package.json's. Imported by name, so a bundle carries
 * that one field and not the whole file (its dependency list would name the CDK).
 */
import { version } from '../package.json';

export const VERSION: string = version;

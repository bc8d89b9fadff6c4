/** The version `triggler --version` prints: package.json's (the bundled CLI carries it inside). */
import packageJson from '../package.json';

export const VERSION: string = packageJson.version;

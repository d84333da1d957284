/* version: SIPALGD_VERSION comes from the file VERSION, the one place the
 * version is written, through the Makefile (-DSIPALGD_VERSION=...). A build
 * that bypasses the Makefile still compiles and says so in -V. */
#ifndef SIPALGD_VERSION_H
#define SIPALGD_VERSION_H

#ifndef SIPALGD_VERSION
#define SIPALGD_VERSION "unknown (built without the Makefile)"
#endif

#endif

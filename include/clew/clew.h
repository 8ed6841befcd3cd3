/*
 * clew/clew.h - umbrella header for libclew, the clew tracing SDK.
 *
 * Include this one header; it pulls in every public part of the API.
 */
#ifndef CLEW_CLEW_H
#define CLEW_CLEW_H

#include "clew/export.h"
#include "clew/status.h"
#include "clew/types.h"
#include "clew/version.h"
#include "clew/context.h"
#include "clew/propagation.h"
#include "clew/trace.h"
#include "clew/exporter.h"
#include "clew/log.h"

#endif /* CLEW_CLEW_H */

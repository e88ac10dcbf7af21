// SPDX-License-Identifier: GPL-2.0-only
/*
 * GEM objects shaped like gma500's: a shmem file whose mapping allocates with
 * GFP_KERNEL | __GFP_DMA32. Pinned on request only (PIN, or CREATE_PINNED).
 */

#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>

#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>

#include "gma500_mock_drv.h"

static void gma500_mock_gem_free(struct drm_gem_object *obj)
{
	struct gma500_mock_object *mobj = to_mock_obj(obj);
	struct gma500_mock_device *mdev = to_mock_dev(obj->dev);

	mutex_lock(&mdev->objects_lock);
	list_del(&mobj->link);
	mutex_unlock(&mdev->objects_lock);

	if (mobj->pages)
		drm_gem_put_pages(obj, mobj->pages, true, true);
	gma500_mock_put_mapped(mobj);
	drm_gem_object_release(obj);
	mutex_destroy(&mobj->lock);
	kfree(mobj);
}

static const struct drm_gem_object_funcs gma500_mock_gem_funcs = {
	.free = gma500_mock_gem_free,
	.mmap = gma500_mock_gem_mmap,
	.vm_ops = &gma500_mock_gem_vm_ops,
};

static int gma500_mock_pin(struct gma500_mock_object *mobj, u32 *pin_count)
{
	struct page **pages;
	int ret = 0;

	mutex_lock(&mobj->lock);
	if (mobj->pin_count == U32_MAX) {
		ret = -EOVERFLOW;
		goto out;
	}
	if (!mobj->pin_count) {
		pages = drm_gem_get_pages(&mobj->base);
		if (IS_ERR(pages)) {
			ret = PTR_ERR(pages);
			goto out;
		}
		mobj->pages = pages;
	}
	*pin_count = ++mobj->pin_count;
out:
	mutex_unlock(&mobj->lock);
	return ret;
}

static int gma500_mock_create(struct drm_device *dev, struct drm_file *file,
			      u64 size, u32 flags, u32 *handle)
{
	struct gma500_mock_device *mdev = to_mock_dev(dev);
	struct gma500_mock_object *mobj;
	u32 pin_count;
	int ret;

	if (!size || size > GMA500_MOCK_MAX_OBJECT_SIZE)
		return -EINVAL;
	mobj = kzalloc(sizeof(*mobj), GFP_KERNEL);
	if (!mobj)
		return -ENOMEM;
	mobj->base.funcs = &gma500_mock_gem_funcs;
	ret = drm_gem_object_init(dev, &mobj->base, PAGE_ALIGN(size));
	if (ret) {
		kfree(mobj);
		return ret;
	}
	/* As psb_gem_create(): limit the object to 32-bit addresses. */
	mapping_set_gfp_mask(mobj->base.filp->f_mapping,
			     GFP_KERNEL | __GFP_DMA32);
	mutex_init(&mobj->lock);
	mutex_lock(&mdev->objects_lock);
	list_add(&mobj->link, &mdev->objects);
	mutex_unlock(&mdev->objects_lock);

	ret = 0;
	if (flags & GMA500_MOCK_CREATE_PINNED)
		ret = gma500_mock_pin(mobj, &pin_count);
	if (!ret)
		ret = drm_gem_handle_create(file, &mobj->base, handle);
	/* The handle holds the object now (or nothing does). */
	drm_gem_object_put(&mobj->base);
	return ret;
}

/* Errors: EINVAL (bad geometry), ENOMEM, ENOSPC. */
int gma500_mock_dumb_create(struct drm_file *file, struct drm_device *dev,
			    struct drm_mode_create_dumb *args)
{
	/* As psb_gem_dumb_create(): 64-byte aligned lines. */
	u64 pitch = ALIGN((u64)args->width * DIV_ROUND_UP(args->bpp, 8), 64);
	u64 size = PAGE_ALIGN(pitch * args->height);
	int ret;

	if (pitch > U32_MAX)
		return -EINVAL;
	ret = gma500_mock_create(dev, file, size, 0, &args->handle);
	if (ret)
		return ret;
	args->pitch = pitch;
	args->size = size;
	return 0;
}

/* Errors: see DRM_IOCTL_GMA500_MOCK_GEM_CREATE in the uapi header. */
int gma500_mock_gem_create_ioctl(struct drm_device *dev, void *data,
				 struct drm_file *file)
{
	struct drm_gma500_mock_gem_create *args = data;
	int ret;

	if (args->flags & ~GMA500_MOCK_CREATE_PINNED)
		return -EINVAL;
	ret = gma500_mock_create(dev, file, args->size, args->flags,
				 &args->handle);
	if (!ret)
		args->size = PAGE_ALIGN(args->size);
	return ret;
}

/* Errors: ENOENT, EOVERFLOW, ENOMEM, ENOSPC, EIO. */
int gma500_mock_pin_ioctl(struct drm_device *dev, void *data,
			  struct drm_file *file)
{
	struct drm_gma500_mock_pin *args = data;
	struct drm_gem_object *obj;
	int ret;

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;
	ret = gma500_mock_pin(to_mock_obj(obj), &args->pin_count);
	drm_gem_object_put(obj);
	return ret;
}

/* Errors: ENOENT, EINVAL (not pinned). */
int gma500_mock_unpin_ioctl(struct drm_device *dev, void *data,
			    struct drm_file *file)
{
	struct drm_gma500_mock_pin *args = data;
	struct gma500_mock_object *mobj;
	struct drm_gem_object *obj;
	int ret = 0;

	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;
	mobj = to_mock_obj(obj);
	mutex_lock(&mobj->lock);
	if (!mobj->pin_count) {
		ret = -EINVAL;
	} else if (--mobj->pin_count == 0) {
		drm_gem_put_pages(obj, mobj->pages, true, true);
		mobj->pages = NULL;
	}
	args->pin_count = mobj->pin_count;
	mutex_unlock(&mobj->lock);
	drm_gem_object_put(obj);
	return ret;
}

/*
 * A new open file of the object's shmem inode: unlike obj->filp, which
 * alloc_file_pseudo() made without FMODE_PREAD/PWRITE, it can pread and
 * pwrite, and it has its own file position.
 * Errors: ENOENT, EINVAL (flags, pad), EMFILE, ENOMEM.
 */
int gma500_mock_shmem_fd_ioctl(struct drm_device *dev, void *data,
			       struct drm_file *file)
{
	struct drm_gma500_mock_shmem_fd *args = data;
	struct drm_gem_object *obj;
	struct file *filp;
	int fd;

	if ((args->flags & ~GMA500_MOCK_FD_CLOEXEC) || args->pad)
		return -EINVAL;
	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return -ENOENT;
	fd = get_unused_fd_flags(args->flags & GMA500_MOCK_FD_CLOEXEC ?
				 O_CLOEXEC : 0);
	if (fd < 0)
		goto out;
	filp = dentry_open(&obj->filp->f_path, O_RDWR | O_LARGEFILE,
			   current_cred());
	if (IS_ERR(filp)) {
		put_unused_fd(fd);
		fd = PTR_ERR(filp);
		goto out;
	}
	fd_install(fd, filp);
	args->fd = fd;
out:
	drm_gem_object_put(obj);
	return fd < 0 ? fd : 0;
}

/* The live object backed by @mapping, with a reference, or NULL. */
struct gma500_mock_object *
gma500_mock_find_object(struct gma500_mock_device *mdev,
			struct address_space *mapping)
{
	struct gma500_mock_object *mobj, *found = NULL;

	mutex_lock(&mdev->objects_lock);
	list_for_each_entry(mobj, &mdev->objects, link) {
		if (mobj->base.filp->f_mapping == mapping &&
		    kref_get_unless_zero(&mobj->base.refcount)) {
			found = mobj;
			break;
		}
	}
	mutex_unlock(&mdev->objects_lock);
	return found;
}
